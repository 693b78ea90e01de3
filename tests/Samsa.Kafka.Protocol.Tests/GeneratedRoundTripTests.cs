using Samsa.Kafka.Protocol.Primitives;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// Every generated message at every valid version: random non-default values in every field the
/// version carries survive Write → Read unchanged, and Size predicts the bytes written exactly.
/// </summary>
public class GeneratedRoundTripTests
{
    public static TheoryData<string, short> MessageVersions()
    {
        var data = new TheoryData<string, short>();
        foreach (var t in MessageReflection.MessageTypes())
        {
            short lo = MessageReflection.Constant(t, "LowestSupportedVersion");
            short hi = MessageReflection.Constant(t, "HighestSupportedVersion");
            for (short v = lo; v <= hi; v++) data.Add(t.Name, v);
        }
        return data;
    }

    private static Type TypeOf(string name) => MessageReflection.MessageTypes().Single(t => t.Name == name);

    [Fact]
    public void EveryMessageKindIsCovered()
    {
        // The schemas in protocol-specs/kafka must all have produced a class; the ApiVersions pair
        // and both headers are the minimum the broker needs.
        var names = MessageReflection.MessageTypes().Select(t => t.Name).ToHashSet();
        Assert.Contains("RequestHeader", names);
        Assert.Contains("ResponseHeader", names);
        Assert.Contains("ApiVersionsRequest", names);
        Assert.Contains("ApiVersionsResponse", names);
    }

    [Theory]
    [MemberData(nameof(MessageVersions))]
    public void RandomValuesRoundTrip(string message, short version)
    {
        var type = TypeOf(message);
        // Deterministic seed per (message, version) so a failure reproduces.
        var rng = new Random(message.Aggregate(17, (h, c) => h * 31 + c) + version);
        for (int round = 0; round < 4; round++)
        {
            var original = MessageReflection.Populate(type, version, rng);
            var bytes = MessageReflection.Write(original, version);
            var decoded = MessageReflection.Read(type, bytes, version, out int consumed);
            Assert.Equal(bytes.Length, consumed);
            Assert.True(MessageReflection.DeepEqual(original, decoded, out var where), $"{message} v{version}: field {where} differs after round trip");
            // Re-encoding the decoded message gives the same bytes.
            Assert.Equal(bytes, MessageReflection.Write(decoded, version));
        }
    }

    [Theory]
    [MemberData(nameof(MessageVersions))]
    public void DefaultsRoundTrip(string message, short version)
    {
        var type = TypeOf(message);
        var original = Activator.CreateInstance(type)!;
        var bytes = MessageReflection.Write(original, version);
        var decoded = MessageReflection.Read(type, bytes, version, out int consumed);
        Assert.Equal(bytes.Length, consumed);
        Assert.True(MessageReflection.DeepEqual(original, decoded, out var where), $"{message} v{version}: default field {where} differs");
    }

    [Theory]
    [MemberData(nameof(MessageVersions))]
    public void EveryTruncationThrowsProtocolException(string message, short version)
    {
        var type = TypeOf(message);
        var rng = new Random(message.Length * 1000 + version);
        var bytes = MessageReflection.Write(MessageReflection.Populate(type, version, rng), version);
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            var prefix = bytes.AsSpan(0, cut).ToArray();
            var e = Assert.Throws<KafkaProtocolException>(() => MessageReflection.Read(type, prefix, version, out _));
            Assert.True(e.Kind is ProtocolErrorKind.Truncated or ProtocolErrorKind.LengthExceedsInput,
                $"{message} v{version} cut at {cut}: unexpected kind {e.Kind}");
        }
    }

    [Theory]
    [MemberData(nameof(MessageVersions))]
    public void CorruptedBytesOnlyEverFailWithProtocolException(string message, short version)
    {
        // Flip random bytes of a valid encoding: decoding either succeeds or throws
        // KafkaProtocolException; IndexOutOfRange, OutOfMemory, Overflow etc. would escape here.
        var type = TypeOf(message);
        var rng = new Random(message.Length * 31 + version);
        var valid = MessageReflection.Write(MessageReflection.Populate(type, version, rng), version);
        if (valid.Length == 0) return;
        for (int i = 0; i < 200; i++)
        {
            var bytes = (byte[])valid.Clone();
            int flips = rng.Next(1, 4);
            for (int f = 0; f < flips; f++)
                bytes[rng.Next(bytes.Length)] = rng.Next(3) == 0 ? (byte)0xFF : (byte)rng.Next(256);
            try
            {
                MessageReflection.Read(type, bytes, version, out _);
            }
            catch (KafkaProtocolException)
            {
            }
        }
    }

    [Theory]
    [MemberData(nameof(MessageVersions))]
    public void FieldMissingFromVersionIsDroppedOnlyWhenIgnorable(string message, short version)
    {
        var type = TypeOf(message);
        var rng = new Random(version + 99);
        foreach (var (property, field) in MessageReflection.Fields(type))
        {
            if (field.IsPresentIn(version)) continue;
            var instance = Activator.CreateInstance(type)!;
            short carrying = field.Lowest;
            property.SetValue(instance, MessageReflection.RandomValue(property.PropertyType, property.GetValue(instance), carrying, rng, 0));
            if (field.Ignorable)
            {
                var bytes = MessageReflection.Write(instance, version);
                var decoded = MessageReflection.Read(type, bytes, version, out _);
                Assert.True(MessageReflection.DeepEqual(property.GetValue(Activator.CreateInstance(type)), property.GetValue(decoded), out _),
                    $"{message} v{version}: ignorable {property.Name} should read back as its default");
            }
            else
            {
                var e = Assert.Throws<KafkaProtocolException>(() => MessageReflection.Write(instance, version));
                Assert.Equal(ProtocolErrorKind.UnsupportedVersion, e.Kind);
            }
        }
    }

    [Theory]
    [MemberData(nameof(MessageVersions))]
    public void VersionsOutsideTheSchemaAreRejected(string message, short version)
    {
        var type = TypeOf(message);
        short hi = MessageReflection.Constant(type, "HighestSupportedVersion");
        if (version != hi) return; // one check per message is enough
        var e = Assert.Throws<KafkaProtocolException>(() => MessageReflection.Read(type, new byte[64], (short)(hi + 1), out _));
        Assert.Equal(ProtocolErrorKind.UnsupportedVersion, e.Kind);
        Assert.Throws<KafkaProtocolException>(() => MessageReflection.Read(type, new byte[64], -1, out _));
    }
}
