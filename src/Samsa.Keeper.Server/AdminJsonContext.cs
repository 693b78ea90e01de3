using System.Text.Json.Serialization;

namespace Samsa.Keeper.Server;

/// <summary>System.Text.Json source generation for the AdminServer's answers (issue #18): the
/// NativeAOT build of samsa has no reflection-based serialization. The answers are
/// Dictionary&lt;string, object?&gt; trees, so every runtime type a value can have is listed here;
/// a value of another type fails with NotSupportedException, which AdminJsonTests catches by
/// running every command. Default options: the bytes are those the reflection serializer wrote.</summary>
[JsonSerializable(typeof(Dictionary<string, object?>))]
[JsonSerializable(typeof(List<Dictionary<string, object?>>))]
[JsonSerializable(typeof(List<object>))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(List<long>))]
[JsonSerializable(typeof(Dictionary<string, List<long>>))]
[JsonSerializable(typeof(Dictionary<string, List<string>>))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(bool))]
internal sealed partial class AdminJsonContext : JsonSerializerContext;
