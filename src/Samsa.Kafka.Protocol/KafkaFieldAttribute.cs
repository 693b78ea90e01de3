namespace Samsa.Kafka.Protocol;

/// <summary>
/// Schema facts of one generated message field, emitted by the generator on every property so
/// tools and tests can tell which versions carry the field without re-reading the schema.
/// Version ranges are inclusive; an empty range is (-1, -1).
/// </summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false)]
public sealed class KafkaFieldAttribute : Attribute
{
    public KafkaFieldAttribute(short lowest, short highest, short nullableLowest, short nullableHighest,
        short taggedLowest, short taggedHighest, int tag, bool ignorable)
    {
        Lowest = lowest;
        Highest = highest;
        NullableLowest = nullableLowest;
        NullableHighest = nullableHighest;
        TaggedLowest = taggedLowest;
        TaggedHighest = taggedHighest;
        Tag = tag;
        Ignorable = ignorable;
    }

    public short Lowest { get; }
    public short Highest { get; }
    public short NullableLowest { get; }
    public short NullableHighest { get; }
    public short TaggedLowest { get; }
    public short TaggedHighest { get; }

    /// <summary>The tag number, or -1 when the field is never tagged.</summary>
    public int Tag { get; }

    /// <summary>Whether the field may be silently dropped when a version cannot carry it.</summary>
    public bool Ignorable { get; }

    public bool IsPresentIn(short version) => version >= Lowest && version <= Highest;

    public bool IsNullableIn(short version) => version >= NullableLowest && version <= NullableHighest;

    public bool IsTaggedIn(short version) => version >= TaggedLowest && version <= TaggedHighest;
}
