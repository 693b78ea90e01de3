using System.Text;
using Samsa.Kafka.Broker.Client;
using Samsa.Kafka.Protocol.Messages;
using Samsa.Kafka.Protocol.Records;

namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>Reads a whole partition over the wire (Fetch v12), decoding compressed batches.</summary>
public static class WireFetch
{
    public static async Task<List<(string Key, string Value)>> AllAsync(int port, string topic, int partition)
    {
        await using var client = await KafkaWireClient.ConnectAsync("127.0.0.1", port);
        var result = new List<(string, string)>();
        long offset = 0;
        while (true)
        {
            var response = await client.SendAsync<FetchResponse>(new FetchRequest
            {
                MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, SessionEpoch = -1,
                Topics = [new() { Topic = topic, Partitions = [new() { Partition = partition, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
            }, 12);
            var pd = response!.Responses[0].Partitions[0];
            if (pd.ErrorCode != 0) throw new InvalidOperationException($"fetch error {pd.ErrorCode}");
            var data = pd.Records is { } m ? m.ToArray() : [];
            int before = result.Count;
            foreach (var batch in RecordBatch.Enumerate(data, allowTruncatedTail: true))
            {
                foreach (var record in batch.GetRecords())
                    result.Add((record.IsKeyNull ? "" : Encoding.UTF8.GetString(record.Key), Encoding.UTF8.GetString(record.Value)));
                offset = batch.NextOffset;
            }
            if (result.Count == before) return result;
        }
    }
}
