package io.egressctl.schemas.registry;

import org.apache.kafka.common.errors.SerializationException;
import org.junit.jupiter.api.Test;

import java.net.ConnectException;

import static org.assertj.core.api.Assertions.assertThat;

/** Which registry failures make a record poison (only "not found") and which are outages to retry. */
class RegistryOutageTest {

    @Test
    void anUnreachableRegistryIsAnOutageWhereverItIsInTheCauses() {
        var unreachable = new SchemaRegistryUnreachableException("no answer", new ConnectException("refused"));
        assertThat(RegistryOutage.isOutage(unreachable)).isTrue();
        assertThat(RegistryOutage.isOutage(new SerializationException("cannot fetch the writer schema id 3", unreachable))).isTrue();
    }

    @Test
    void serverErrorsThrottlingAndAuthenticationFailuresAreOutagesNotPoison() {
        for (int status : new int[] {500, 503, 429, 401, 403}) {
            assertThat(RegistryOutage.isOutage(new SerializationException("x", new SchemaRegistryException("e", status, 0))))
                    .as("HTTP %d", status).isTrue();
        }
    }

    @Test
    void anUnknownSchemaIdAndUndecodableBytesArePoison() {
        assertThat(RegistryOutage.isOutage(new SerializationException("unknown schema id 9",
                new SchemaRegistryException("not found", 404, 40403)))).isFalse();
        assertThat(RegistryOutage.isOutage(new SerializationException("bad magic byte"))).isFalse();
        assertThat(RegistryOutage.isOutage(new SerializationException("corrupt body", new java.io.EOFException()))).isFalse();
    }
}
