using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using Samsa.Protocol.Generator;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// Runs <see cref="KafkaMessageGenerator"/> in memory: malformed schemas give diagnostics (never
/// a crash), and a schema using every supported field kind compiles and round-trips.
/// </summary>
public class GeneratorTests
{
    private sealed class InMemoryText(string path, string text) : AdditionalText
    {
        public override string Path => path;

        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }

    private static (GeneratorDriverRunResult Result, Compilation Output) Run(params (string Path, string Text)[] files)
    {
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator)
            .Select(p => MetadataReference.CreateFromFile(p))
            .Append(MetadataReference.CreateFromFile(typeof(IKafkaMessage).Assembly.Location));
        var compilation = CSharpCompilation.Create("GeneratedUnderTest", [],
            references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        GeneratorDriver driver = CSharpGeneratorDriver.Create(
            [new KafkaMessageGenerator().AsSourceGenerator()],
            files.Select(f => (AdditionalText)new InMemoryText(f.Path, f.Text)));
        driver = driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out _);
        return (driver.GetRunResult(), output);
    }

    private static Diagnostic SingleSpecError(string text)
    {
        var (result, _) = Run(("/specs/Bad.json", text));
        Assert.Null(result.Results[0].Exception);
        var diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.Equal("SAMSA001", diagnostic.Id);
        return diagnostic;
    }

    private const string Header = """
        { "type": "data", "name": "Bad", "validVersions": "0-3", "flexibleVersions": "2+", "fields": [
        """;

    [Theory]
    [InlineData("{ \"type\": \"data\", \"name\": \"Bad\", ", "quoted key")]
    [InlineData(Header + "{ \"name\": \"A\", \"type\": \"bytes\", \"versions\": \"0+\", \"nullableVersions\": \"1+\", \"default\": \"null\" } ] }", "not all versions")]
    [InlineData(Header + "{ \"name\": \"A\", \"type\": \"Nope\", \"versions\": \"0+\" } ] }", "unknown type")]
    [InlineData(Header + "{ \"name\": \"A\", \"type\": \"int32\", \"versions\": \"0+\", \"tag\": 0 } ] }", "taggedVersions")]
    [InlineData(Header + "{ \"name\": \"A\", \"type\": \"int32\", \"versions\": \"0+\", \"tag\": 0, \"taggedVersions\": \"0+\" } ] }", "flexibleVersions")]
    [InlineData(Header + "{ \"name\": \"A\", \"type\": \"int8\", \"versions\": \"0+\", \"default\": \"300\" } ] }", "not a valid integer")]
    [InlineData(Header + "{ \"name\": \"A\", \"type\": \"int32\", \"versions\": \"0+\", \"nullableVersions\": \"0+\" } ] }", "nullableVersions")]
    [InlineData(Header + "{ \"name\": \"A\", \"type\": \"string\", \"versions\": \"x+\" } ] }", "bad version range")]
    [InlineData(Header + "{ \"name\": \"A\", \"type\": \"records\", \"versions\": \"2+\", \"tag\": 0, \"taggedVersions\": \"2+\" } ] }", "records")]
    [InlineData(Header + "{ \"name\": \"A\", \"type\": \"int32\", \"versions\": \"0+\" }, { \"name\": \"A\", \"type\": \"int32\", \"versions\": \"0+\" } ] }", "twice")]
    [InlineData("{ \"type\": \"request\", \"name\": \"NoKeyRequest\", \"validVersions\": \"0\", \"fields\": [] }", "apiKey")]
    [InlineData("[1, 2]", "must be an object")]
    public void MalformedSchemasReportADiagnostic(string text, string expected)
    {
        var diagnostic = SingleSpecError(text);
        Assert.Contains(expected, diagnostic.GetMessage(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void DiagnosticsPointAtTheOffendingLine()
    {
        var diagnostic = SingleSpecError("// comment\n" + Header + "\n{ \"name\": \"A\", \"type\": \"Nope\", \"versions\": \"0+\" } ] }");
        Assert.Equal(2, diagnostic.Location.GetLineSpan().StartLinePosition.Line); // 0-based: third line
    }

    [Fact]
    public void TheSameMessageInTwoFilesIsADiagnosticNotACrash()
    {
        const string spec = "{ \"type\": \"data\", \"name\": \"Twice\", \"validVersions\": \"0\", \"fields\": [] }";
        var (result, _) = Run(("/a/Twice.json", spec), ("/b/Twice.json", spec));
        Assert.All(result.Results, r => Assert.Null(r.Exception));
        Assert.Equal("SAMSA002", Assert.Single(result.Diagnostics).Id);
    }

    [Fact]
    public void OnlyJsonFilesAreRead()
    {
        var (result, output) = Run(("/specs/zookeeper.jute", "module org.apache.zookeeper.data { class Id { ustring scheme; } }"));
        Assert.Empty(result.Diagnostics);
        Assert.Empty(result.GeneratedTrees); // nor is an empty ApiMessages emitted without schemas
        Assert.Empty(output.SyntaxTrees);
    }

    [Fact]
    public void KitchenSinkSchemaCompilesAndRoundTrips()
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "GeneratorSpecs", "KitchenSink.json"));
        var (result, output) = Run(("/specs/KitchenSink.json", text));
        Assert.Empty(result.Diagnostics);
        var errors = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning && d.Id != "CS0436").ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors));

        using var stream = new MemoryStream();
        var emit = output.Emit(stream);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics));
        var context = new AssemblyLoadContext("kitchen-sink", isCollectible: true);
        try
        {
            stream.Position = 0;
            var assembly = context.LoadFromStream(stream);
            var type = MessageReflection.MessageTypes(assembly).Single(t => t.Name == "KitchenSink");

            // The struct named like a top-level field is renamed; the struct field "Size" got a suffix.
            var cursorClass = type.GetNestedType("CursorData");
            Assert.NotNull(cursorClass);
            Assert.NotNull(cursorClass!.GetProperty("SizeValue"));
            // Defaults from the schema, hex included.
            var fresh = Activator.CreateInstance(type)!;
            Assert.Equal((sbyte)0x7f, type.GetProperty("Small")!.GetValue(fresh));
            Assert.Equal((ushort)9092, type.GetProperty("Port")!.GetValue(fresh));
            Assert.Equal(uint.MaxValue, type.GetProperty("Big")!.GetValue(fresh));
            Assert.Equal(0.5, type.GetProperty("Ratio")!.GetValue(fresh));
            Assert.Equal(true, type.GetProperty("Flag")!.GetValue(fresh));
            Assert.Equal("abc", type.GetProperty("Label")!.GetValue(fresh));
            Assert.Equal(int.MaxValue, type.GetProperty("Limit")!.GetValue(fresh));
            Assert.Null(type.GetProperty("Blob")!.GetValue(fresh));
            Assert.Null(type.GetProperty("Cursor")!.GetValue(fresh));

            for (short version = 0; version <= 4; version++)
            {
                var rng = new Random(version);
                for (int round = 0; round < 20; round++)
                {
                    var original = MessageReflection.Populate(type, version, rng);
                    var bytes = MessageReflection.Write(original, version);
                    var decoded = MessageReflection.Read(type, bytes, version, out int consumed);
                    Assert.Equal(bytes.Length, consumed);
                    Assert.True(MessageReflection.DeepEqual(original, decoded, out var where), $"v{version}: {where}");
                }
                var defaults = MessageReflection.Write(Activator.CreateInstance(type)!, version);
                Assert.True(MessageReflection.DeepEqual(Activator.CreateInstance(type), MessageReflection.Read(type, defaults, version, out _), out var w), $"defaults v{version}: {w}");
            }

            // Legacy keeps its int16 length even in flexible v3 (field-level flexibleVersions "none").
            var sink = Activator.CreateInstance(type)!;
            type.GetProperty("Legacy")!.SetValue(sink, "xy");
            var v3 = MessageReflection.Write(sink, 3);
            Assert.True(IndexOf(v3, [0x00, 0x02, (byte)'x', (byte)'y']) >= 0);
            // Tagged fields left at default are not written: only the tagged-field count 0 ends v3.
            Assert.Equal(0, v3[^1]);
        }
        finally
        {
            context.Unload();
        }
    }

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);
}
