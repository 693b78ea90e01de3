using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests.Records;

/// <summary>
/// Mutations behind a valid checksum: the CRC is recomputed after corrupting the body, so only the
/// structural checks stand between hostile bytes and the reader. The only acceptable failure is
/// KafkaProtocolException.
/// </summary>
public class FuzzTests
{
    private static readonly CompressionType[] Codecs =
        [CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd];

    [Fact]
    public void Mutated_v2_batches_with_a_fixed_crc_fail_only_with_KafkaProtocolException()
    {
        Prop.ForAll<(byte[][] Payloads, int Seed), byte, (int, byte)[]>((input, codecPick, mutations) =>
        {
            (byte[][] payloads, int seed) = input;
            CompressionType codec = Codecs[codecPick % Codecs.Length];
            byte[] batch = RecordModel.Build(RecordModel.FromPayloads(payloads, seed), codec);
            if (mutations is null) return true;
            foreach ((int where, byte value) in mutations)
            {
                // Mutate anywhere from the attributes on (codec bits and counts included).
                int position = RecordBatch.AttributesOffset + Math.Abs(where % (batch.Length - RecordBatch.AttributesOffset));
                batch[position] = value;
            }
            RecordBatch.WriteCrc(batch);
            try
            {
                RecordModel.Read(batch, maxDecompressed: 1 << 20);
            }
            catch (KafkaProtocolException)
            {
            }
            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(500));
    }

    [Fact]
    public void Mutated_legacy_wrappers_with_a_fixed_crc_fail_only_with_KafkaProtocolException()
    {
        CompressionType[] legacyCodecs = [CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4];
        Prop.ForAll<byte[][], (byte Magic, byte Codec), (int, byte)[]>((payloads, picks, mutations) =>
        {
            (byte magicPick, byte codecPick) = picks;
            byte magic = (byte)(magicPick % 2);
            CompressionType codec = legacyCodecs[codecPick % legacyCodecs.Length];
            List<TestRecord> records = RecordModel.FromPayloads(payloads.Length == 0 ? [[1]] : payloads, 1)
                .Select(r => r with { Headers = [] }).ToList();
            using var legacy = new PooledBuffer();
            LegacyMessageSet.ConvertFromRecordBatch(RecordModel.Build(records, codec), magic, legacy);
            byte[] set = legacy.ToArray();
            if (mutations is null) return true;
            foreach ((int where, byte value) in mutations)
            {
                int position = LegacyMessageSet.AttributesOffset + Math.Abs(where % (set.Length - LegacyMessageSet.AttributesOffset));
                set[position] = value;
            }
            // Re-seal the (single) wrapper message so the CRC check passes.
            BinaryPrimitives.WriteUInt32BigEndian(set.AsSpan(LegacyMessageSet.CrcOffset), Crc32.Compute(set.AsSpan(LegacyMessageSet.MagicOffset)));
            try
            {
                using var output = new PooledBuffer();
                LegacyMessageSet.ConvertToRecordBatch(set, CompressionType.None, output, maxDecompressedBytes: 1 << 20);
            }
            catch (KafkaProtocolException)
            {
            }
            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(500));
    }

    [Fact]
    public void Random_bytes_as_a_records_field_fail_only_with_KafkaProtocolException()
    {
        Prop.ForAll<byte[]>(data =>
        {
            try
            {
                RecordModel.Read(data, maxDecompressed: 1 << 20);
            }
            catch (KafkaProtocolException)
            {
            }
            try
            {
                using var output = new PooledBuffer();
                LegacyMessageSet.ConvertToRecordBatch(data, CompressionType.None, output, maxDecompressedBytes: 1 << 20);
            }
            catch (KafkaProtocolException)
            {
            }
            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(1000));
    }
}
