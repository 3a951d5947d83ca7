/**
 * writeahead/kafka: Kafka connectors for writeahead.
 *
 *   mirror({ kafka, topic, wal })   Kafka topic -> WAL, exactly once, offsets preserved
 *   replay({ wal, topic, kafka })   WAL -> Kafka, acknowledged before the cursor moves; no duplicates with a sole writer
 *   runMirror / runReplay           the same as long-running processes (signals, reconnect, lag logs, /metrics)
 *
 * Both connectors talk to Kafka through a KafkaPort (see port.ts); kafkajsPort() is the kafkajs one.
 */
export { mirror, mirrorCheckpoint, sourceOffset, checkpointName, type Mirror, type MirrorOptions, type MirrorSummary, type MirrorPartitionStatus, type MirrorBatchEvent, type MirrorOffsetResetEvent, type MirrorCheckpoint, type MirrorRun, type OffsetMode } from './mirror.js'
export { replay, type Replay, type ReplayOptions, type ReplaySummary, type ReplayPartitionStatus, type ReplayBatchEvent, type ReplayFrom } from './replay.js'
export { provenanceHeader, provenanceOf, stripProvenance, POSITION_HEADER, type Provenance } from './provenance.js'
export { murmur2, murmur2Partition } from './murmur2.js'
export { kafkajsPort, patchKafkajsDecoders, patchKafkajsAbortFilter, committedRecords, orderedHeadersOf, ORDERED_HEADERS, type KafkajsPortOptions, type KafkajsConsumerOptions } from './kafkajs-port.js'
export { kafkajsHeaders, patchKafkajsEncoders } from './kafkajs-encoder.js'
export {
  KafkaPortError, isKafkaPort, type KafkaPort, type KafkaFailure, type PortRecord, type PortMessage, type PortBatch, type PartitionInfo,
  type StartPosition, type ConsumeOptions, type Consumption, type ProduceRecord, type PortProducer, type CreateTopicOptions
} from './port.js'
export type { ReconnectOptions, ReconnectEvent } from './common.js'
export {
  runMirror, runReplay, optionsFromEnv, parseFrom, createKafka, type BridgeKafkaOptions, type BridgeCommonOptions, type RunMirrorOptions, type RunReplayOptions,
  type BridgeSummary, type EnvOptions
} from './bridge.js'
