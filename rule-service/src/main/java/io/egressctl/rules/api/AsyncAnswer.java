package io.egressctl.rules.api;

import org.springframework.http.HttpStatus;
import org.springframework.web.context.request.async.DeferredResult;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.function.Function;

/**
 * A handler's answer that may have to wait ({@code ?wait=}): the value itself when it is there
 * already, else a {@link DeferredResult} that Spring MVC answers from when the future completes, so
 * the request holds no servlet thread while it waits. A failure of the future (an
 * {@link ApiException}, such as 409 for a rejected change) is answered as if the handler had thrown it.
 */
final class AsyncAnswer {

    /** Beyond the wait's own timeout: the waiter completes first, this only guards against a lost completion. */
    private static final Duration MARGIN = Duration.ofSeconds(15);

    private AsyncAnswer() {
    }

    /**
     * @param waiter the wait, from {@link io.egressctl.rules.changes.ChangeWaiters#await}; cancelled when
     *               the request ends before it completes (the caller went away)
     * @param answer what the handler answers with the waiter's value; may throw an {@link ApiException}
     * @param wait   how long the waiter may take at most (its own timeout)
     * @return the answer when the waiter is done, else a {@code DeferredResult} of it
     */
    static <S, T> Object of(CompletableFuture<S> waiter, Function<S, T> answer, Duration wait) {
        if (waiter.isDone()) {
            try {
                return answer.apply(waiter.get());
            } catch (ExecutionException e) {
                throw rethrow(e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        DeferredResult<T> result = new DeferredResult<>(wait.plus(MARGIN).toMillis());
        waiter.whenComplete((value, failure) -> {
            if (failure != null) {
                result.setErrorResult(failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure);
                return;
            }
            try {
                result.setResult(answer.apply(value));
            } catch (RuntimeException e) {
                result.setErrorResult(e);
            }
        });
        result.onTimeout(() -> result.setErrorResult(new ApiException(HttpStatus.SERVICE_UNAVAILABLE, "WAIT_LOST",
                "the wait did not complete; read the change's status with GET /api/v1/changes/{changeId}")));
        // The caller went away, or the container gave up: the waiter leaves the registry.
        result.onCompletion(() -> waiter.cancel(false));
        result.onError(e -> waiter.cancel(false));
        return result;
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }
}
