using System.Buffers.Binary;
using System.Text;

namespace Samsa.Kafka.Broker.Telemetry;

/// <summary>What <see cref="OtlpMetrics.Summarize"/> found in a MetricsData payload.</summary>
public sealed record OtlpSummary(IReadOnlyList<string> MetricNames, IReadOnlyDictionary<string, double> Values, int DataPoints);

/// <summary>
/// A minimal reader of the OpenTelemetry MetricsData protobuf (opentelemetry/proto/metrics/v1)
/// that KIP-714 clients push: it walks resource_metrics (1) → scope_metrics (2) → metrics (2) and
/// keeps each metric's name (1), counts the data points of its gauge (5), sum (7), histogram (9),
/// exponential_histogram (10) or summary (11), and, for gauges and sums, the value of the last
/// NumberDataPoint (as_double 4 or as_int 6). Everything else is skipped by wire type. Malformed
/// input (a length past the end, a bad wire type, a varint over 10 bytes) is a FormatException.
/// </summary>
public static class OtlpMetrics
{
    public static OtlpSummary Summarize(ReadOnlySpan<byte> metricsData)
    {
        var names = new List<string>();
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        int points = 0;
        var reader = new Reader(metricsData);
        while (reader.Next(out int field, out int wire))
        {
            if (field == 1 && wire == 2) ResourceMetrics(reader.Bytes(), names, values, ref points);
            else reader.Skip(wire);
        }
        return new OtlpSummary(names, values, points);
    }

    private static void ResourceMetrics(ReadOnlySpan<byte> data, List<string> names, Dictionary<string, double> values, ref int points)
    {
        var r = new Reader(data);
        while (r.Next(out int field, out int wire))
        {
            if (field == 2 && wire == 2)
            {
                var scope = new Reader(r.Bytes());
                while (scope.Next(out int f, out int w))
                {
                    if (f == 2 && w == 2) Metric(scope.Bytes(), names, values, ref points);
                    else scope.Skip(w);
                }
            }
            else r.Skip(wire);
        }
    }

    private static void Metric(ReadOnlySpan<byte> data, List<string> names, Dictionary<string, double> values, ref int points)
    {
        var r = new Reader(data);
        string? name = null;
        double? last = null;
        while (r.Next(out int field, out int wire))
        {
            if (field == 1 && wire == 2) name = Encoding.UTF8.GetString(r.Bytes());
            else if (field is 5 or 7 or 9 or 10 or 11 && wire == 2)
            {
                var body = new Reader(r.Bytes());
                while (body.Next(out int f, out int w))
                {
                    if (f == 1 && w == 2)
                    {
                        var point = body.Bytes();
                        points++;
                        if (field is 5 or 7 && NumberValue(point) is { } v) last = v;
                    }
                    else body.Skip(w);
                }
            }
            else r.Skip(wire);
        }
        if (name is null) return;
        names.Add(name);
        if (last is { } value) values[name] = value;
    }

    private static double? NumberValue(ReadOnlySpan<byte> point)
    {
        var r = new Reader(point);
        double? value = null;
        while (r.Next(out int field, out int wire))
        {
            if (field == 4 && wire == 1) value = BitConverter.Int64BitsToDouble(r.Fixed64());
            else if (field == 6 && wire == 1) value = r.Fixed64();
            else r.Skip(wire);
        }
        return value;
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _pos;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_pos >= _data.Length) return false;
            ulong key = Varint();
            wire = (int)(key & 7);
            if (key >> 3 is 0 or > int.MaxValue) throw new FormatException("bad protobuf field number");
            field = (int)(key >> 3);
            return true;
        }

        public ulong Varint()
        {
            ulong result = 0;
            for (int shift = 0; shift < 70; shift += 7)
            {
                if (_pos >= _data.Length) throw new FormatException("truncated protobuf varint");
                byte b = _data[_pos++];
                result |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return result;
            }
            throw new FormatException("protobuf varint longer than 10 bytes");
        }

        public ReadOnlySpan<byte> Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(_data.Length - _pos)) throw new FormatException("protobuf length past the end");
            var slice = _data.Slice(_pos, (int)length);
            _pos += (int)length;
            return slice;
        }

        public long Fixed64()
        {
            if (_data.Length - _pos < 8) throw new FormatException("truncated protobuf fixed64");
            long v = BinaryPrimitives.ReadInt64LittleEndian(_data[_pos..]);
            _pos += 8;
            return v;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Fixed64(); break;
                case 2: Bytes(); break;
                case 5:
                    if (_data.Length - _pos < 4) throw new FormatException("truncated protobuf fixed32");
                    _pos += 4;
                    break;
                default: throw new FormatException($"unsupported protobuf wire type {wire}");
            }
        }
    }
}
