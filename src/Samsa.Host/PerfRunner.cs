using System.Diagnostics;
using Samsa.Kafka.Broker;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Broker.Config;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Host;

/// <summary>
/// <c>samsa perf produce|fetch</c>: drives a broker over the wire with the generated codecs and
/// reports throughput. Without --bootstrap it starts an in-process broker on 127.0.0.1:0 with its
/// logs in --data (a temporary directory by default).
/// </summary>
internal static class PerfRunner
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || (args[0] != "produce" && args[0] != "fetch"))
            throw new UsageException("perf: expected 'produce' or 'fetch'");
        string mode = args[0];
        int records = 200_000, recordSize = 100, batch = 500, partitions = 1;
        string? bootstrap = null, data = null;
        string topic = "samsa-perf";
        short acks = 1;
        for (int i = 1; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--records": records = Program.PositiveInt(args, ref i); break;
                case "--record-size": recordSize = Program.PositiveInt(args, ref i); break;
                case "--batch": batch = Program.PositiveInt(args, ref i); break;
                case "--partitions": partitions = Program.PositiveInt(args, ref i); break;
                case "--bootstrap": bootstrap = Program.Value(args, ref i); break;
                case "--topic": topic = Program.Value(args, ref i); break;
                case "--data": data = Program.Value(args, ref i); break;
                case "--acks":
                    var a = Program.Value(args, ref i);
                    acks = a switch { "0" => 0, "1" => 1, "-1" or "all" => -1, _ => throw new UsageException($"perf: --acks must be 0, 1 or all, got '{a}'") };
                    break;
                default: throw new UsageException($"perf: unknown option '{args[i]}'");
            }
        }

        KafkaBroker? broker = null;
        string host;
        int port;
        string? tempDir = null;
        if (bootstrap is null)
        {
            data ??= tempDir = Path.Combine(Path.GetTempPath(), "samsa-perf-" + Guid.NewGuid().ToString("N"));
            broker = new KafkaBroker(new BrokerConfig(new Dictionary<string, string>
            {
                ["broker.id"] = "1", ["listeners"] = "PLAINTEXT://127.0.0.1:0", ["log.dirs"] = data,
            }));
            await broker.StartAsync();
            (host, port) = ("127.0.0.1", broker.BoundEndPoint.Port);
        }
        else
        {
            int colon = bootstrap.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(bootstrap[(colon + 1)..], out port)) throw new UsageException("perf: --bootstrap expects HOST:PORT");
            host = bootstrap[..colon];
        }
        try
        {
            await using var client = await KafkaWireClient.ConnectAsync(host, port);
            var create = new CreateTopicsRequest
            {
                Topics = [new CreateTopicsRequest.CreatableTopic { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }],
                TimeoutMs = 30000,
            };
            await client.SendAsync<CreateTopicsResponse>(create, 7);

            var value = new byte[recordSize];
            Random.Shared.NextBytes(value);
            var batchRecords = Enumerable.Range(0, batch).Select(_ => ((byte[]?)null, (byte[]?)value)).ToList();
            var sw = Stopwatch.StartNew();
            long sent = 0;
            int partition = 0;
            while (sent < records)
            {
                int n = (int)Math.Min(batch, records - sent);
                var batchBytes = RecordBatchBuilder.Build(n == batch ? batchRecords : batchRecords.GetRange(0, n), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                var produce = new ProduceRequest
                {
                    Acks = acks,
                    TimeoutMs = 30000,
                    TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = batchBytes }] }],
                };
                var response = await client.SendAsync<ProduceResponse>(produce, 9, expectResponse: acks != 0);
                var error = response?.Responses[0].PartitionResponses[0].ErrorCode ?? 0;
                if (error != 0) { Console.Error.WriteLine($"perf: produce failed with error {error}"); return 1; }
                sent += n;
                partition = (partition + 1) % partitions;
            }
            var produceTime = sw.Elapsed;
            Report("produce", records, recordSize, produceTime);
            if (mode == "fetch")
            {
                sw.Restart();
                long received = 0;
                var offsets = new long[partitions];
                while (received < records)
                {
                    var fetch = new FetchRequest
                    {
                        MaxWaitMs = 500, MinBytes = 1, MaxBytes = 50 * 1024 * 1024,
                        Topics = [new FetchRequest.FetchTopic
                        {
                            Topic = topic,
                            Partitions = Enumerable.Range(0, partitions).Select(p => new FetchRequest.FetchPartition
                            {
                                Partition = p, FetchOffset = offsets[p], PartitionMaxBytes = 10 * 1024 * 1024,
                            }).ToList(),
                        }],
                    };
                    var response = await client.SendAsync<FetchResponse>(fetch, 12);
                    foreach (var pd in response!.Responses[0].Partitions)
                    {
                        if (pd.ErrorCode != 0) { Console.Error.WriteLine($"perf: fetch failed with error {pd.ErrorCode}"); return 1; }
                        var got = RecordBatchBuilder.ReadRecords(pd.Records is { } rec ? rec.Span : default);
                        if (got.Count == 0) continue;
                        offsets[pd.PartitionIndex] = got[^1].Offset + 1;
                        received += got.Count;
                    }
                }
                Report("fetch", records, recordSize, sw.Elapsed);
            }
            return 0;
        }
        finally
        {
            if (broker is not null) await broker.DisposeAsync();
            if (tempDir is not null) try { Directory.Delete(tempDir, recursive: true); } catch (IOException) { }
        }
    }

    private static void Report(string what, long records, int recordSize, TimeSpan elapsed)
    {
        double secs = Math.Max(elapsed.TotalSeconds, 1e-9);
        Console.Out.WriteLine($"{what}: {records} records of {recordSize} B in {elapsed.TotalMilliseconds:F0} ms: {records / secs:F0} records/s, {records * (double)recordSize / secs / (1024 * 1024):F1} MiB/s");
    }
}
