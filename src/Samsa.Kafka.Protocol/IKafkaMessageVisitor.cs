namespace Samsa.Kafka.Protocol;

/// <summary>
/// Receives the fields of a generated message through its <c>Accept(visitor, version)</c>: each
/// field the version carries, in schema order, under its schema name (<c>"TopicData"</c>). Array
/// elements come with a null name. The broker's request tap (Samsa.Kafka.Broker/Tap) renders
/// messages as JSON with it; being generated, it needs no reflection (NativeAOT keeps none for
/// these properties).
/// </summary>
public interface IKafkaMessageVisitor
{
    /// <summary>Every integer kind (int8 to int64, uint16, uint32).</summary>
    void Value(string? name, long value);
    void Value(string? name, bool value);
    void Value(string? name, double value);
    void Value(string? name, Guid value);
    void Value(string? name, string? value);
    void Bytes(string? name, byte[]? value);
    void Records(string? name, ReadOnlyMemory<byte>? value);

    /// <summary>A null struct or array.</summary>
    void Null(string? name);

    void BeginStruct(string? name);
    void EndStruct();

    void BeginArray(string? name, int count);

    /// <summary>Whether element <paramref name="index"/> should be visited; false ends the array early.</summary>
    bool NextElement(int index);

    /// <summary>Ends the array; <paramref name="omitted"/> elements were not visited.</summary>
    void EndArray(int omitted);
}
