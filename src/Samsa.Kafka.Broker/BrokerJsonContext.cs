using System.Text.Json.Serialization;
using Samsa.Kafka.Broker.Cluster;

namespace Samsa.Kafka.Broker;

// System.Text.Json source generation for the broker's own JSON files (issue #18): the NativeAOT
// build of samsa has no reflection-based serialization, and the generated metadata also spares the
// JIT build the reflection walk on first use. The options are the serializer's defaults, so the
// bytes are those the reflection serializer wrote before (BrokerJsonContextTests compares them).

/// <summary>Compact JSON: the client quota file (quotas.json).</summary>
[JsonSerializable(typeof(Dictionary<string, Dictionary<string, string>>))]
internal sealed partial class BrokerJsonContext : JsonSerializerContext;

/// <summary>Indented JSON: the single-node topic metadata file (ReplicaManager).</summary>
[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(ReplicaManager.MetadataFile))]
internal sealed partial class BrokerIndentedJsonContext : JsonSerializerContext;
