using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using Samsa.Kafka.Protocol.Compression;
using Samsa.Kafka.Protocol.Primitives;
using Samsa.Kafka.Protocol.Records;
using Xunit;
using Record = Samsa.Kafka.Protocol.Records.Record;

namespace Samsa.Kafka.Protocol.Tests.Records;

public class RecordBatchTests
{
    private static readonly CompressionType[] Codecs =
        [CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd];

    private static void AssertSameRecords(IReadOnlyList<TestRecord> expected, IReadOnlyList<TestRecord> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(expected[i].Matches(actual[i]), $"record {i}: expected {expected[i]} got {actual[i]}");
    }

    [Fact]
    public void Build_validate_iterate_round_trips_for_every_codec()
    {
        Prop.ForAll<byte[][], int, byte>((payloads, seed, codecPick) =>
        {
            CompressionType codec = Codecs[codecPick % Codecs.Length];
            List<TestRecord> records = RecordModel.FromPayloads(payloads, seed);
            byte[] batch = RecordModel.Build(records, codec, baseOffset: 1000 + seed, configure: b =>
            {
                b.ProducerId = 77;
                b.ProducerEpoch = 5;
                b.BaseSequence = 9;
                b.PartitionLeaderEpoch = 3;
            });
            var view = new RecordBatch(batch);
            Assert.Equal(RecordBatchError.None, view.Validate());
            Assert.Equal(batch.Length, view.SizeInBytes);
            Assert.Equal(codec, view.Compression);
            Assert.Equal(records.Count, view.RecordsCount);
            Assert.Equal(1000L + seed, view.BaseOffset);
            Assert.Equal(77, view.ProducerId);
            Assert.Equal((short)5, view.ProducerEpoch);
            Assert.Equal(9, view.BaseSequence);
            Assert.Equal(3, view.PartitionLeaderEpoch);
            Assert.Equal(TimestampType.CreateTime, view.TimestampType);
            if (records.Count > 0)
            {
                Assert.Equal(records[^1].OffsetDelta, view.LastOffsetDelta);
                Assert.Equal(records[0].Timestamp, view.BaseTimestamp);
                Assert.Equal(records.Max(r => r.Timestamp), view.MaxTimestamp);
            }
            AssertSameRecords(records, RecordModel.Read(batch));
            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));
    }

    [Fact]
    public void Record_offsets_and_timestamps_are_absolute()
    {
        byte[] batch = RecordModel.Build(
            [new TestRecord(0, 5000, [1], [2], []), new TestRecord(1, 4000, null, [3], []), new TestRecord(4, 9000, [4], null, [])],
            baseOffset: 100);
        var offsets = new List<long>();
        var timestamps = new List<long>();
        foreach (Record r in new RecordBatch(batch).GetRecords())
        {
            offsets.Add(r.Offset);
            timestamps.Add(r.Timestamp);
        }
        Assert.Equal([100L, 101, 104], offsets);
        Assert.Equal([5000L, 4000, 9000], timestamps);
        var view = new RecordBatch(batch);
        Assert.Equal(104, view.LastOffset);
        Assert.Equal(9000, view.MaxTimestamp);
    }

    [Fact]
    public void Any_flipped_bit_after_the_crc_field_is_a_corrupt_checksum()
    {
        foreach (CompressionType codec in Codecs)
        {
            byte[] batch = RecordModel.Build(RecordModel.FromPayloads([[1, 2, 3], [4, 5], [6]], 7), codec);
            for (int position = RecordBatch.CrcOffset; position < batch.Length; position++)
            {
                byte[] corrupt = (byte[])batch.Clone();
                corrupt[position] ^= (byte)(1 << (position % 8));
                Assert.Equal(RecordBatchError.CorruptChecksum, new RecordBatch(corrupt).Validate());
                var e = Assert.Throws<KafkaProtocolException>(() => new RecordBatch(corrupt).EnsureValid());
                Assert.Equal(ProtocolErrorKind.CorruptChecksum, e.Kind);
            }
        }
    }

    [Fact]
    public void Every_truncation_point_gives_a_typed_error()
    {
        foreach (CompressionType codec in Codecs)
        {
            byte[] batch = RecordModel.Build(RecordModel.FromPayloads([[1, 2, 3], [4, 5], [6], [], [7, 8, 9, 10]], 11), codec);
            for (int cut = 1; cut < batch.Length; cut++)
            {
                byte[] prefix = batch[..cut];
                Assert.Throws<KafkaProtocolException>(() => RecordModel.Read(prefix));
                if (cut >= RecordBatch.HeaderSize)
                    Assert.Equal(RecordBatchError.Truncated, new RecordBatch(prefix).Validate());
            }
        }
    }

    [Fact]
    public void Truncated_records_with_a_consistent_header_fail_while_iterating()
    {
        // The nastier case: the header (length, CRC) is rewritten to match the cut records section,
        // so only record-level bounds checks can catch it.
        foreach (CompressionType codec in Codecs)
        {
            List<TestRecord> records = RecordModel.FromPayloads([[1, 2, 3], [4, 5], [6], [9], [7, 8, 9, 10]], 3);
            byte[] batch = RecordModel.Build(records, CompressionType.None);
            byte[] section = batch[RecordBatch.RecordsOffset..];
            for (int cut = 0; cut < section.Length; cut++)
            {
                byte[] records2 = CompressionCodecs.Compress(codec, section.AsSpan(0, cut));
                byte[] truncated = RecordModel.WrapRecords(records2, records.Count);
                BinaryPrimitives.WriteInt16BigEndian(truncated.AsSpan(RecordBatch.AttributesOffset), (short)codec);
                RecordBatch.WriteCrc(truncated);
                RecordBatchError error = new RecordBatch(truncated).Validate();
                Assert.True(error is RecordBatchError.None or RecordBatchError.InvalidRecordCount, error.ToString());
                Assert.Throws<KafkaProtocolException>(() => RecordModel.Read(truncated));
            }
        }
    }

    [Fact]
    public void A_key_length_beyond_the_batch_is_rejected()
    {
        // body: attributes 0, timestampDelta 0, offsetDelta 0, keyLength 1000 (only 3 bytes follow), ...
        byte[] body = [0, .. RecordModel.Varints(0, 0, 1000), 1, 2, 3, .. RecordModel.Varints(-1, 0)];
        byte[] record = [.. RecordModel.Varints(body.Length), .. body];
        byte[] batch = RecordModel.WrapRecords(record, 1);
        Assert.Equal(RecordBatchError.None, new RecordBatch(batch).Validate());
        var e = Assert.Throws<KafkaProtocolException>(() => RecordModel.Read(batch));
        Assert.Equal(ProtocolErrorKind.LengthExceedsInput, e.Kind);
    }

    [Theory]
    [InlineData(new long[] { 0, 0, -5 }, "negative key length")]
    [InlineData(new long[] { 0, 0, -1, -2 }, "negative value length")]
    [InlineData(new long[] { 0, 0, -1, -1, 1000 }, "header count larger than the record")]
    [InlineData(new long[] { 0, 0, -1, -1, -3 }, "negative header count")]
    [InlineData(new long[] { 0, 0, -1, -1, 1, -1, -1 }, "negative header key length")]
    [InlineData(new long[] { 0, 0, -1, -1, 1, 40, -1 }, "header key beyond the record")]
    [InlineData(new long[] { 0, 0, -1, -1, 0, 0, 0 }, "bytes left over inside the record")]
    public void Malformed_records_are_rejected(long[] varints, string because)
    {
        byte[] body = [0, .. RecordModel.Varints(varints)];
        byte[] record = [.. RecordModel.Varints(body.Length), .. body];
        byte[] batch = RecordModel.WrapRecords(record, 1);
        Assert.True(Assert.Throws<KafkaProtocolException>(() => RecordModel.Read(batch)) is not null, because);
    }

    [Fact]
    public void Record_count_must_match_the_records_section()
    {
        byte[] body = [0, .. RecordModel.Varints(0, 0, -1, -1, 0)];
        byte[] record = [.. RecordModel.Varints(body.Length), .. body];
        // Two records present, one declared: leftover bytes.
        Assert.Throws<KafkaProtocolException>(() => RecordModel.Read(RecordModel.WrapRecords([.. record, .. record], 1)));
        // One present, two declared: missing record.
        Assert.Throws<KafkaProtocolException>(() => RecordModel.Read(RecordModel.WrapRecords(record, 2)));
        // Negative or impossible counts are caught by Validate.
        Assert.Equal(RecordBatchError.InvalidRecordCount, new RecordBatch(RecordModel.WrapRecords(record, -1)).Validate());
        Assert.Equal(RecordBatchError.InvalidRecordCount, new RecordBatch(RecordModel.WrapRecords(record, 1_000_000)).Validate());
    }

    [Fact]
    public void Header_checks_report_their_own_errors()
    {
        byte[] good = RecordModel.Build([new TestRecord(0, 1, [1], [2], [])]);

        byte[] magic = (byte[])good.Clone();
        magic[RecordBatch.MagicOffset] = 3;
        Assert.Equal(RecordBatchError.UnsupportedMagic, new RecordBatch(magic).Validate());

        byte[] shortLength = (byte[])good.Clone();
        BinaryPrimitives.WriteInt32BigEndian(shortLength.AsSpan(RecordBatch.BatchLengthOffset), 10);
        Assert.Equal(RecordBatchError.InvalidBatchLength, new RecordBatch(shortLength).Validate());

        byte[] codec = (byte[])good.Clone();
        BinaryPrimitives.WriteInt16BigEndian(codec.AsSpan(RecordBatch.AttributesOffset), 6);
        RecordBatch.WriteCrc(codec);
        Assert.Equal(RecordBatchError.UnknownCompression, new RecordBatch(codec).Validate());
        Assert.Equal((short)76, RecordBatchError.UnknownCompression.ToErrorCode());
        Assert.Equal((short)2, RecordBatchError.CorruptChecksum.ToErrorCode());
        Assert.Equal((short)87, RecordBatchError.InvalidOffsetRange.ToErrorCode());

        Assert.Throws<KafkaProtocolException>(() => new RecordBatch(good.AsSpan(0, 60)));
    }

    [Fact]
    public void Client_batch_checks_follow_LogValidator()
    {
        var one = new[] { new TestRecord(0, 1, [1], [2], []) };
        Assert.Equal(RecordBatchError.None, new RecordBatch(RecordModel.Build(one)).ValidateFromClient());
        Assert.Equal(RecordBatchError.InvalidOffsetRange,
            new RecordBatch(RecordModel.Build([new TestRecord(0, 1, null, null, []), new TestRecord(2, 1, null, null, [])])).ValidateFromClient());
        Assert.Equal(RecordBatchError.ControlBatchFromClient,
            new RecordBatch(RecordModel.Build(one, configure: b => b.IsControl = true)).ValidateFromClient());
        Assert.Equal(RecordBatchError.InvalidSequence,
            new RecordBatch(RecordModel.Build(one, configure: b => b.ProducerId = 5)).ValidateFromClient());
        Assert.Equal(RecordBatchError.InvalidRecordCount, new RecordBatch(RecordModel.Build([])).ValidateFromClient());
    }

    [Fact]
    public void Stamping_offset_and_leader_epoch_keeps_the_crc_valid()
    {
        byte[] batch = RecordModel.Build(RecordModel.FromPayloads([[1], [2], [3]], 1), CompressionType.Lz4);
        uint crc = new RecordBatch(batch).Crc;
        RecordBatch.SetBaseOffset(batch, 123_456_789_000);
        RecordBatch.SetPartitionLeaderEpoch(batch, 42);
        var view = new RecordBatch(batch);
        Assert.Equal(RecordBatchError.None, view.Validate());
        Assert.Equal(crc, view.Crc);
        Assert.Equal(123_456_789_000, view.BaseOffset);
        Assert.Equal(42, view.PartitionLeaderEpoch);
        long first = -1;
        foreach (Record r in view.GetRecords()) { first = r.Offset; break; }
        Assert.Equal(123_456_789_000, first);
    }

    [Fact]
    public void Log_append_time_rewrite_sets_type_and_max_timestamp_and_new_crc()
    {
        foreach (CompressionType codec in Codecs)
        {
            List<TestRecord> records = RecordModel.FromPayloads([[1], [2], [3]], 4);
            byte[] batch = RecordModel.Build(records, codec);
            uint before = new RecordBatch(batch).Crc;
            RecordBatch.SetLogAppendTime(batch, 1_999_999_999_999);
            var view = new RecordBatch(batch);
            Assert.Equal(RecordBatchError.None, view.Validate());
            Assert.NotEqual(before, view.Crc);
            Assert.Equal(TimestampType.LogAppendTime, view.TimestampType);
            Assert.Equal(1_999_999_999_999, view.MaxTimestamp);
            Assert.Equal(codec, view.Compression);
            foreach (Record r in view.GetRecords())
            {
                Assert.Equal(1_999_999_999_999, r.Timestamp);
                int delta = r.OffsetDelta;
                Assert.Equal(records.Single(x => x.OffsetDelta == delta).Timestamp, r.CreateTimestamp);
            }
        }
    }

    [Fact]
    public void Many_batches_in_one_buffer_are_framed_in_order()
    {
        byte[] a = RecordModel.Build([new TestRecord(0, 1, [1], [1], [])], baseOffset: 0);
        byte[] b = RecordModel.Build([new TestRecord(0, 2, [2], [2], []), new TestRecord(1, 3, [3], [3], [])], CompressionType.Snappy, baseOffset: 1);
        byte[] c = RecordModel.Build([new TestRecord(0, 4, [4], [4], [])], CompressionType.Zstd, baseOffset: 3);
        byte[] all = [.. a, .. b, .. c];
        var bases = new List<long>();
        foreach (RecordBatch batch in RecordBatch.Enumerate(all))
        {
            Assert.Equal(RecordBatchError.None, batch.Validate());
            bases.Add(batch.BaseOffset);
        }
        Assert.Equal([0L, 1, 3], bases);
        Assert.Equal(4, RecordModel.Read(all).Count);

        // A Fetch response may end in a partial batch; with allowTruncatedTail it is skipped.
        byte[] partial = all[..(all.Length - 5)];
        var enumerator = RecordBatch.Enumerate(partial, allowTruncatedTail: true);
        int count = 0;
        while (enumerator.MoveNext()) count++;
        Assert.Equal(2, count);
        Assert.Equal(a.Length + b.Length, enumerator.Position);
        Assert.Throws<KafkaProtocolException>(() => RecordModel.Read(partial));
    }

    [Fact]
    public void Recompression_between_every_pair_of_codecs_keeps_records_and_header()
    {
        List<TestRecord> records = RecordModel.FromPayloads(
            Enumerable.Range(0, 50).Select(i => TestData.JsonLike(200 + i, i)).ToArray(), 5);
        foreach (CompressionType from in Codecs)
        {
            byte[] source = RecordModel.Build(records, from, baseOffset: 500, configure: b =>
            {
                b.ProducerId = 9;
                b.ProducerEpoch = 1;
                b.BaseSequence = 100;
                b.IsTransactional = true;
            });
            foreach (CompressionType to in Codecs)
            {
                using var output = new PooledBuffer();
                RecordBatch.Recompress(source, to, output);
                var view = new RecordBatch(output.WrittenSpan);
                Assert.Equal(RecordBatchError.None, view.Validate());
                Assert.Equal(to, view.Compression);
                Assert.True(view.IsTransactional);
                Assert.Equal(500, view.BaseOffset);
                Assert.Equal(9, view.ProducerId);
                Assert.Equal(100, view.BaseSequence);
                Assert.Equal(new RecordBatch(source).MaxTimestamp, view.MaxTimestamp);
                AssertSameRecords(records, RecordModel.Read(output.WrittenSpan));
            }
        }
    }

    [Fact]
    public void Compressed_batch_decompression_is_bounded()
    {
        List<TestRecord> records = [new TestRecord(0, 1, null, new byte[1 << 20], [])];
        byte[] batch = RecordModel.Build(records, CompressionType.Zstd);
        Assert.True(batch.Length < 1000);
        var e = Assert.Throws<KafkaProtocolException>(() => RecordModel.Read(batch, maxDecompressed: 64 * 1024));
        Assert.Equal(ProtocolErrorKind.Compression, e.Kind);
    }

    [Fact]
    public void Builder_copies_records_from_another_batch()
    {
        List<TestRecord> records = RecordModel.FromPayloads([[1, 2], [3], [4, 5, 6], []], 21);
        byte[] source = RecordModel.Build(records, CompressionType.Gzip);
        using var copy = new RecordBatchBuilder(CompressionType.None, 0);
        foreach (Record r in new RecordBatch(source).GetRecords()) copy.Append(r);
        AssertSameRecords(records, RecordModel.Read(copy.Build()));
    }

    [Fact]
    public void Delete_horizon_flag_is_exposed()
    {
        byte[] batch = RecordModel.Build([new TestRecord(0, 50, null, [1], [])], configure: b => b.DeleteHorizonMs = 777);
        var view = new RecordBatch(batch);
        Assert.True(view.HasDeleteHorizonMs);
        Assert.Equal(777, view.DeleteHorizonMs);
        Assert.Equal(RecordBatchError.None, view.Validate());
    }

    [Fact]
    public void Iterating_uncompressed_batches_allocates_nothing_per_record()
    {
        long Measure(int recordCount, CompressionType codec)
        {
            using var builder = new RecordBatchBuilder(codec);
            int valueSize = (1 << 20) / recordCount;
            byte[] value = TestData.JsonLike(valueSize);
            for (int i = 0; i < recordCount; i++) builder.Append(i, 1000 + i, null, value);
            byte[] batch = builder.Build();
            Iterate(batch); // warm up (JIT, pools)
            // The least of three passes: a one-off allocation on this thread during a pass (CI once
            // saw 5,832 bytes in one lz4 pass; a pool refilling after a trim) is not a per-record cost.
            long least = long.MaxValue;
            for (int pass = 0; pass < 3; pass++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                long sum = Iterate(batch);
                least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
                Assert.True(sum > 0);
            }
            return least;
        }

        static long Iterate(byte[] batch)
        {
            long sum = 0;
            var view = new RecordBatch(batch);
            if (view.Validate() != RecordBatchError.None) throw new InvalidOperationException();
            foreach (Record r in view.GetRecords()) sum += r.ValueLength + r.Offset;
            return sum;
        }

        Assert.Equal(0, Measure(10_000, CompressionType.None));
        Assert.Equal(0, Measure(100, CompressionType.None));
        // Compressed: a constant (the pooled-buffer wrapper), whatever the record count.
        long many = Measure(10_000, CompressionType.Lz4);
        long few = Measure(100, CompressionType.Lz4);
        Assert.True(many < 1024 && Math.Abs(many - few) < 256, $"lz4 iteration allocated {many} (10k records) vs {few} (100 records)");
    }
}
