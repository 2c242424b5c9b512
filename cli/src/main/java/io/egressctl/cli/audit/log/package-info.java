/**
 * Reading the topics for the audit commands: {@code LogReader} reads offset ranges of partitions with a manually
 * assigned consumer (no group, no commits) and finds time bounds with the broker's time index; {@code EventDecoder}
 * decodes schema-registry framed Avro values with one cached reader per writer schema; {@code AvroJson} turns any
 * decoded record into plain JSON-ready values. Nothing here decides anything: it only gets records off the log.
 */
package io.egressctl.cli.audit.log;
