using Microsoft.CodeAnalysis;

namespace Samsa.Protocol.Generator;

/// <summary>Turns protocol-specs (Kafka JSON schemas, ZooKeeper jute) into C# codecs at build time.</summary>
[Generator(LanguageNames.CSharp)]
public sealed class ProtocolGenerator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
    }
}
