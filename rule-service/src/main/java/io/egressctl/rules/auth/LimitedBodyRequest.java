package io.egressctl.rules.auth;

import io.egressctl.rules.api.ApiException;
import jakarta.servlet.ReadListener;
import jakarta.servlet.ServletInputStream;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import org.springframework.http.HttpStatus;

import java.io.IOException;

/** Caps the bytes read from a request body (chunked bodies have no Content-Length to check up front). */
final class LimitedBodyRequest extends HttpServletRequestWrapper {

    private final int limit;

    LimitedBodyRequest(HttpServletRequest request, int limit) {
        super(request);
        this.limit = limit;
    }

    @Override
    public ServletInputStream getInputStream() throws IOException {
        ServletInputStream in = super.getInputStream();
        return new ServletInputStream() {
            private long read;

            @Override
            public int read() throws IOException {
                int b = in.read();
                if (b >= 0 && ++read > limit) {
                    throw new ApiException(HttpStatus.CONTENT_TOO_LARGE, "BODY_TOO_LARGE", "request body exceeds " + limit + " bytes");
                }
                return b;
            }

            @Override
            public int read(byte[] buf, int off, int len) throws IOException {
                int n = in.read(buf, off, len);
                if (n > 0) {
                    read += n;
                    if (read > limit) {
                        throw new ApiException(HttpStatus.CONTENT_TOO_LARGE, "BODY_TOO_LARGE", "request body exceeds " + limit + " bytes");
                    }
                }
                return n;
            }

            @Override
            public boolean isFinished() {
                return in.isFinished();
            }

            @Override
            public boolean isReady() {
                return in.isReady();
            }

            @Override
            public void setReadListener(ReadListener listener) {
                in.setReadListener(listener);
            }
        };
    }
}
