using System.Collections;
using System.Reflection;
using System.Text;
using Samsa.Kafka.Protocol.Primitives;

namespace Samsa.Kafka.Protocol.Tests;

/// <summary>
/// Reflection helpers over the generated messages: fill every field a version carries with
/// random non-default values, encode and decode through the generated Read/Write/Size, and
/// compare object graphs field by field.
/// </summary>
internal static class MessageReflection
{
    public static readonly Assembly ProtocolAssembly = typeof(IKafkaMessage).Assembly;

    /// <summary>Every generated top-level message type.</summary>
    public static IEnumerable<Type> MessageTypes() => MessageTypes(ProtocolAssembly);

    public static IEnumerable<Type> MessageTypes(Assembly assembly) =>
        assembly.GetTypes()
            .Where(t => t.Namespace == "Samsa.Kafka.Protocol.Messages" && !t.IsNested && t.IsClass && typeof(IKafkaMessage).IsAssignableFrom(t))
            .OrderBy(t => t.Name, StringComparer.Ordinal);

    public static short Constant(Type t, string name) => (short)t.GetField(name, BindingFlags.Public | BindingFlags.Static)!.GetRawConstantValue()!;

    public static IEnumerable<(PropertyInfo Property, KafkaFieldAttribute Field)> Fields(Type t) =>
        t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => (p, p.GetCustomAttribute<KafkaFieldAttribute>()))
            .Where(x => x.Item2 is not null)
            .Select(x => (x.p, x.Item2!));

    public static object Read(Type t, byte[] bytes, short version, out int consumed)
    {
        var reader = new KafkaReader(bytes);
        var result = ReadWith(t, ref reader, version);
        consumed = reader.Position;
        return result;
    }

    public static object ReadWith(Type t, ref KafkaReader reader, short version)
    {
        var method = t.GetMethod("Read", BindingFlags.Public | BindingFlags.Static)!;
        // A ref struct cannot be boxed for MethodInfo.Invoke, so go through a typed delegate.
        // (return-type covariance lets the object-returning delegate bind to the typed Read).
        var del = (ReadDelegate)Delegate.CreateDelegate(typeof(ReadDelegate), method);
        return del(ref reader, version);
    }

    private delegate object ReadDelegate(ref KafkaReader reader, short version);

    public static byte[] Write(object message, short version)
    {
        var size = Size(message, version);
        var buffer = new byte[size];
        var writer = new KafkaWriter(buffer);
        WriteWith(message, ref writer, version);
        if (writer.Position != size) throw new InvalidOperationException($"{message.GetType().Name} v{version}: Size said {size} but Write wrote {writer.Position}");
        return buffer;
    }

    public static int Size(object message, short version) =>
        (int)message.GetType().GetMethod("Size", [typeof(short)])!.Invoke(message, [version])!;

    public static void WriteWith(object message, ref KafkaWriter writer, short version)
    {
        if (message is IKafkaMessage m)
        {
            m.Write(ref writer, version);
            return;
        }
        throw new InvalidOperationException("only top-level messages are written directly");
    }

    // ---- random population ------------------------------------------------------------------

    public static object Populate(Type t, short version, Random rng, int depth = 0)
    {
        var instance = Activator.CreateInstance(t)!;
        foreach (var (p, f) in Fields(t))
        {
            if (!f.IsPresentIn(version)) continue;
            var defaultValue = p.GetValue(instance);
            // Where the version allows null, send null now and then (unless null is the default,
            // which the defaults round trip covers): exercises null markers and tagged nulls.
            if (f.IsNullableIn(version) && defaultValue is not null && rng.Next(4) == 0)
            {
                p.SetValue(instance, null);
                continue;
            }
            p.SetValue(instance, RandomValue(p.PropertyType, defaultValue, version, rng, depth));
        }
        return instance;
    }

    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz-._0123456789é漢🙂";

    public static object? RandomValue(Type type, object? defaultValue, short version, Random rng, int depth)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if (underlying == typeof(ReadOnlyMemory<byte>))
        {
            var bytes = new byte[rng.Next(1, 40)];
            rng.NextBytes(bytes);
            return (ReadOnlyMemory<byte>?)new ReadOnlyMemory<byte>(bytes);
        }
        object value;
        do
        {
            value = RandomRaw(type, version, rng, depth);
        } while (defaultValue is not null && DeepEqual(value, defaultValue, out _));
        return value;
    }

    private static object RandomRaw(Type type, short version, Random rng, int depth)
    {
        if (type == typeof(bool)) return rng.Next(2) == 1;
        if (type == typeof(sbyte)) return (sbyte)rng.Next(sbyte.MinValue, sbyte.MaxValue + 1);
        if (type == typeof(short)) return (short)rng.Next(short.MinValue, short.MaxValue + 1);
        if (type == typeof(ushort)) return (ushort)rng.Next(0, ushort.MaxValue + 1);
        if (type == typeof(int)) return rng.Next(int.MinValue, int.MaxValue);
        if (type == typeof(uint)) return (uint)rng.NextInt64(0, uint.MaxValue + 1L);
        if (type == typeof(long)) return rng.NextInt64(long.MinValue, long.MaxValue);
        if (type == typeof(double)) return rng.NextDouble() * 1e6 - 5e5;
        if (type == typeof(Guid))
        {
            var b = new byte[16];
            rng.NextBytes(b);
            return new Guid(b);
        }
        if (type == typeof(string))
        {
            var sb = new StringBuilder();
            int n = rng.Next(1, 12);
            for (int i = 0; i < n; i++)
            {
                // Pick whole text elements so surrogate pairs stay intact.
                var el = System.Globalization.StringInfo.GetNextTextElement(Alphabet, rng.Next(0, Alphabet.Length - 1));
                sb.Append(el.Length == 1 && char.IsLowSurrogate(el[0]) ? "x" : el);
            }
            return sb.ToString();
        }
        if (type == typeof(byte[]))
        {
            var b = new byte[rng.Next(1, 20)];
            rng.NextBytes(b);
            return b;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
        {
            var element = type.GetGenericArguments()[0];
            var list = (IList)Activator.CreateInstance(type)!;
            int n = depth > 3 ? 1 : rng.Next(1, 4);
            for (int i = 0; i < n; i++)
            {
                var v = element.IsClass && element != typeof(string) && element != typeof(byte[])
                    ? Populate(element, version, rng, depth + 1)
                    : RandomRaw(element, version, rng, depth + 1);
                list.Add(v);
            }
            return list;
        }
        if (type.IsClass) return Populate(type, version, rng, depth + 1);
        throw new NotSupportedException(type.FullName);
    }

    // ---- comparison --------------------------------------------------------------------------

    public static bool DeepEqual(object? a, object? b, out string where, string path = "")
    {
        where = path;
        if (a is null || b is null) return a is null && b is null;
        var type = a.GetType();
        if (type != b.GetType()) return false;
        switch (a)
        {
            case double da: return BitConverter.DoubleToInt64Bits(da) == BitConverter.DoubleToInt64Bits((double)b);
            case string or bool or sbyte or short or ushort or int or uint or long or Guid: return a.Equals(b);
            case byte[] ba: return ba.AsSpan().SequenceEqual((byte[])b);
            case ReadOnlyMemory<byte> ma: return ma.Span.SequenceEqual(((ReadOnlyMemory<byte>)b).Span);
            case IList la:
            {
                var lb = (IList)b;
                if (la.Count != lb.Count) { where = path + ".Count"; return false; }
                for (int i = 0; i < la.Count; i++)
                    if (!DeepEqual(la[i], lb[i], out where, $"{path}[{i}]")) return false;
                return true;
            }
        }
        foreach (var (p, _) in Fields(type))
            if (!DeepEqual(p.GetValue(a), p.GetValue(b), out where, $"{path}.{p.Name}")) return false;
        return true;
    }
}
