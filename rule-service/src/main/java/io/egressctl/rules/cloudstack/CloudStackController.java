package io.egressctl.rules.cloudstack;

import io.egressctl.rules.config.EgressProperties;
import io.egressctl.rules.logging.LogContext;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Map;

/**
 * {@code /client/api}: CloudStack's API endpoint. GET with a query string or POST with a form body,
 * as CloudStack clients send them; authentication is the request signature (not the REST API's
 * X-API-Key, whose filter covers only {@code /api/**}).
 */
@RestController
class CloudStackController {

    private final CloudStackApi api;
    private final int maxBodyBytes;

    CloudStackController(CloudStackApi api, EgressProperties props) {
        this.api = api;
        this.maxBodyBytes = props.maxBodyBytes() <= 0 ? 65536 : props.maxBodyBytes();
    }

    @RequestMapping({"/client/api", "/client/api/"})
    void handle(HttpServletRequest request, HttpServletResponse response) throws IOException {
        CloudStackApi.Reply reply;
        String method = request.getMethod().toUpperCase(Locale.ROOT);
        if (!method.equals("GET") && !method.equals("POST")) {
            reply = CloudStackApi.error("errorresponse", new CloudStackError(CloudStackError.METHOD_NOT_ALLOWED,
                    CloudStackError.CS_SERVER_API, "use GET with a query string or POST with a form body"));
            response.setHeader("Allow", "GET, POST");
        } else if (request.getContentLengthLong() > maxBodyBytes) {
            reply = CloudStackApi.error("errorresponse", new CloudStackError(CloudStackError.PAYLOAD_TOO_LARGE,
                    CloudStackError.CS_SERVER_API, "request body exceeds " + maxBodyBytes + " bytes"));
        } else {
            Map<String, String[]> params = request.getParameterMap();
            reply = api.handle(params, LogContext.requestId(request));
        }
        byte[] body = reply.body().getBytes(StandardCharsets.UTF_8);
        response.setStatus(reply.status());
        response.setContentType(reply.contentType());
        response.setContentLength(body.length);
        response.getOutputStream().write(body);
    }
}
