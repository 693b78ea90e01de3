namespace Samsa.Kafka.Broker.Tests.EndToEnd;

/// <summary>kafkajs 2.2.4 (pure JavaScript, classic non-flexible encodings) against the broker:
/// admin create/describe/delete, produce with acks=-1, topic offsets.</summary>
public class KafkaJsTests
{
    private static readonly string ModuleDir = Path.Combine(Path.GetTempPath(), "samsa-kafkajs-2.2.4");

    private static string RequireKafkaJs()
    {
        ExternalClients.Require("node", "nodejs");
        ExternalClients.Require("npm", "npm");
        if (!Directory.Exists(Path.Combine(ModuleDir, "node_modules", "kafkajs")))
        {
            Directory.CreateDirectory(ModuleDir);
            var r = ExternalClients.Run("npm", $"install --silent --prefix {ModuleDir} kafkajs@2.2.4", timeoutMs: 180_000);
            if (!Directory.Exists(Path.Combine(ModuleDir, "node_modules", "kafkajs")))
                throw new InvalidOperationException($"npm install kafkajs@2.2.4 failed; this end-to-end test needs it:\n{r.Stdout}\n{r.Stderr}");
        }
        return ModuleDir;
    }

    [Fact]
    public async Task AdminAndProducer()
    {
        var dir = RequireKafkaJs();
        await using var live = await LiveBroker.StartAsync();
        var script = Path.Combine(dir, $"t-{Guid.NewGuid():N}.js");
        File.WriteAllText(script, """
            const { Kafka, logLevel } = require('kafkajs');
            (async () => {
              const kafka = new Kafka({ clientId: 'samsa-test', brokers: [process.argv[2]], logLevel: logLevel.NOTHING });
              const admin = kafka.admin();
              await admin.connect();
              console.log('created', await admin.createTopics({ topics: [{ topic: 'js', numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '5000' }] }] }));
              console.log('again', await admin.createTopics({ topics: [{ topic: 'js', numPartitions: 2 }] }));
              const md = await admin.fetchTopicMetadata({ topics: ['js'] });
              console.log('partitions', md.topics[0].partitions.length);
              const producer = kafka.producer();
              await producer.connect();
              const r = await producer.send({ topic: 'js', acks: -1, compression: 1,
                messages: [{ key: 'a', value: 'one', partition: 0 }, { key: 'b', value: 'two', partition: 0 }] });
              console.log('sent', r[0].errorCode, r[0].baseOffset);
              const offsets = await admin.fetchTopicOffsets('js');
              console.log('offsets', offsets.find(o => o.partition === 0).high);
              const cfg = await admin.describeConfigs({ resources: [{ type: 2, name: 'js', configNames: ['retention.ms'] }], includeSynonyms: false });
              console.log('config', cfg.resources[0].configEntries[0].configValue);
              await admin.deleteTopics({ topics: ['js'] });
              console.log('after', JSON.stringify(await admin.listTopics()));
              await producer.disconnect(); await admin.disconnect();
            })().catch(e => { console.error('FAIL', e); process.exit(1); });
            """);
        try
        {
            var (code, stdout, stderr) = ExternalClients.Run("node", $"{script} {live.Bootstrap}", timeoutMs: 60_000);
            Assert.True(code == 0, $"kafkajs failed:\n{stdout}\n{stderr}");
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(["created true", "again false", "partitions 2", "sent 0 0", "offsets 2", "config 5000", "after []"], lines);
        }
        finally
        {
            File.Delete(script);
        }
    }
}
