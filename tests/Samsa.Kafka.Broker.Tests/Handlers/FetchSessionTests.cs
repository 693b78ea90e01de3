using Samsa.Kafka.Broker.Fetch;
using Samsa.Kafka.Protocol;
using Samsa.Kafka.Protocol.Messages;

namespace Samsa.Kafka.Broker.Tests.Handlers;

/// <summary>Fetch sessions (KIP-227) as upstream's FetchManager keeps them: created on epoch 0,
/// incremental fetches that answer only what changed, forgotten partitions, epoch and id errors,
/// closing, and the cache's eviction rules.</summary>
public class FetchSessionTests
{
    private static async Task<FetchResponse> Fetch(HandlerFixture f, int sessionId, int epoch, (string T, int P, long Offset)[] parts,
        (string T, int P)[]? forget = null, short version = 12, int maxBytes = 1 << 20, int maxWaitMs = 0, int minBytes = 0)
    {
        Guid Id(string t) => f.Broker.Replicas.GetTopic(t)?.Id ?? Guid.Empty;
        var request = new FetchRequest { SessionId = sessionId, SessionEpoch = epoch, MaxBytes = maxBytes, MaxWaitMs = maxWaitMs, MinBytes = minBytes };
        foreach (var g in parts.GroupBy(p => p.T))
            request.Topics.Add(new FetchRequest.FetchTopic
            {
                Topic = g.Key, TopicId = Id(g.Key),
                Partitions = g.Select(p => new FetchRequest.FetchPartition { Partition = p.P, FetchOffset = p.Offset, PartitionMaxBytes = 1 << 20 }).ToList(),
            });
        foreach (var g in (forget ?? []).GroupBy(p => p.T))
            request.ForgottenTopicsData.Add(new FetchRequest.ForgottenTopic { Topic = g.Key, TopicId = Id(g.Key), Partitions = g.Select(p => p.P).ToList() });
        return (await f.Send<FetchResponse>(request, version))!;
    }

    // (partition, high watermark, values) of every partition in the answer.
    private static List<(int P, long Hw, string Values)> Answered(FetchResponse r) =>
        r.Responses.SelectMany(t => t.Partitions).Select(p => (p.PartitionIndex, p.HighWatermark, string.Join(",", HandlerFixture.Values(p)))).ToList();

    [Fact]
    public async Task IncrementalFetchesAnswerOnlyPartitionsWithSomethingNew()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", partitions: 3);
        await f.Produce("t", 0, HandlerFixture.Batch("a"));

        var full = await Fetch(f, 0, 0, [("t", 0, 0), ("t", 1, 0), ("t", 2, 0)]);
        Assert.Equal(0, full.ErrorCode);
        Assert.NotEqual(0, full.SessionId);
        Assert.Equal([(0, 1L, "a"), (1, 0L, ""), (2, 0L, "")], Answered(full));
        Assert.True(f.Broker.FetchSessions.Contains(full.SessionId));

        // The consumer moved on in partition 0 only: nothing new anywhere, so no partition at all.
        var none = await Fetch(f, full.SessionId, 1, [("t", 0, 1)]);
        Assert.Equal((0, full.SessionId), (none.ErrorCode, none.SessionId));
        Assert.Empty(Answered(none));

        // New records in partition 1, which the request does not name: the session remembers its offset.
        await f.Produce("t", 1, HandlerFixture.Batch("b"));
        var one = await Fetch(f, full.SessionId, 2, []);
        Assert.Equal([(1, 1L, "b")], Answered(one));

        Assert.Equal(1, f.Broker.FetchSessions.SessionsCreated);
        Assert.Equal(2, f.Broker.FetchSessions.IncrementalFetches);
    }

    [Fact]
    public async Task HighWatermarkChangeAloneIncludesThePartitionAndPartitionsWithDataRotateToTheBack()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", partitions: 2);
        await f.Produce("t", 0, HandlerFixture.Batch(new string('x', 300)));
        var full = await Fetch(f, 0, 0, [("t", 0, 0), ("t", 1, 0)], maxBytes: 1);
        Assert.Equal([(0, 1L, new string('x', 300)), (1, 0L, "")], Answered(full));

        // Partition 0 (fetched again from 0) takes the whole byte budget; partition 1 got a record
        // it has no room for, yet its high watermark moved, so it is in the answer without records.
        await f.Produce("t", 1, HandlerFixture.Batch("y"));
        var hwOnly = await Fetch(f, full.SessionId, 1, [], maxBytes: 1);
        Assert.Equal([(0, 1L, new string('x', 300)), (1, 1L, "")], Answered(hwOnly));

        // Partition 0 returned records, so it went to the back: partition 1 now reads first.
        var rotated = await Fetch(f, full.SessionId, 2, [], maxBytes: 1);
        Assert.Equal([(1, 1L, "y")], Answered(rotated));   // partition 0: no room, nothing changed

        // Both consumed: nothing to say.
        Assert.Empty(Answered(await Fetch(f, full.SessionId, 3, [("t", 0, 1), ("t", 1, 1)])));
    }

    [Fact]
    public async Task PartitionsAreAddedAndForgottenAndAnEmptySessionCloses()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", partitions: 2);
        await f.CreateTopic("u");
        var full = await Fetch(f, 0, 0, [("t", 0, 0)]);
        int id = full.SessionId;

        // Added partitions are answered at once (the session knows nothing of them yet).
        var added = await Fetch(f, id, 1, [("t", 1, 0), ("u", 0, 0)]);
        Assert.Equal(["t/1", "u/0"], added.Responses.SelectMany(t => t.Partitions.Select(p => $"{t.Topic}/{p.PartitionIndex}")).ToList());

        // Forgotten: new records there are no longer answered.
        Assert.Empty(Answered(await Fetch(f, id, 2, [], forget: [("t", 0)])));
        await f.Produce("t", 0, HandlerFixture.Batch("gone"));
        await f.Produce("u", 0, HandlerFixture.Batch("kept"));
        Assert.Equal([(0, 1L, "kept")], Answered(await Fetch(f, id, 3, [])));

        // Forgetting the rest closes the session: a sessionless answer, and the id is unknown after.
        var closed = await Fetch(f, id, 4, [], forget: [("t", 1), ("u", 0)]);
        Assert.Equal((0, 0), (closed.ErrorCode, closed.SessionId));
        Assert.False(f.Broker.FetchSessions.Contains(id));
        Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, (await Fetch(f, id, 5, [])).ErrorCode);
    }

    [Fact]
    public async Task EpochMismatchAndUnknownIdAreSessionErrors()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        var full = await Fetch(f, 0, 0, [("t", 0, 0)]);
        var wrong = await Fetch(f, full.SessionId, 5, []);
        Assert.Equal(((short)ErrorCode.InvalidFetchSessionEpoch, 0), (wrong.ErrorCode, wrong.SessionId));
        Assert.Empty(wrong.Responses);
        // A replayed epoch is refused the same way; the session itself survives.
        Assert.Equal(0, (await Fetch(f, full.SessionId, 1, [])).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidFetchSessionEpoch, (await Fetch(f, full.SessionId, 1, [])).ErrorCode);
        Assert.Equal(0, (await Fetch(f, full.SessionId, 2, [])).ErrorCode);
        Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, (await Fetch(f, full.SessionId ^ 0x5a5a, 1, [])).ErrorCode);
    }

    [Fact]
    public async Task FinalEpochClosesTheSessionAndInitialEpochReplacesIt()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t");
        await f.Produce("t", 0, HandlerFixture.Batch("a"));
        int first = (await Fetch(f, 0, 0, [("t", 0, 0)])).SessionId;

        // Epoch 0 with an id: that session is closed and a new one made.
        var again = await Fetch(f, first, 0, [("t", 0, 0)]);
        Assert.NotEqual(0, again.SessionId);
        Assert.NotEqual(first, again.SessionId);
        Assert.False(f.Broker.FetchSessions.Contains(first));

        // Epoch -1 with an id: closed, answered as a full fetch with no session.
        var final = await Fetch(f, again.SessionId, -1, [("t", 0, 0)]);
        Assert.Equal((0, 0), (final.ErrorCode, final.SessionId));
        Assert.Equal([(0, 1L, "a")], Answered(final));
        Assert.False(f.Broker.FetchSessions.Contains(again.SessionId));
        Assert.Equal(0, f.Broker.FetchSessions.Count);

        // Fetch v6 and older know no sessions.
        Assert.Equal(2, f.Broker.FetchSessions.SessionsCreated);
        Assert.Equal(0, (await Fetch(f, 0, 0, [("t", 0, 0)], version: 6)).SessionId);
        Assert.Equal(2, f.Broker.FetchSessions.SessionsCreated);
    }

    [Fact]
    public async Task SessionsByTopicIdCannotContinueWithTopicNames()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", partitions: 2);
        var full = await Fetch(f, 0, 0, [("t", 0, 0)], version: 13);
        Assert.NotEqual(0, full.SessionId);
        await f.Produce("t", 1, HandlerFixture.Batch("z"));
        var added = await Fetch(f, full.SessionId, 1, [("t", 1, 0)], version: 16);
        Assert.Equal([(1, 1L, "z")], Answered(added));
        Assert.Equal(f.Broker.Replicas.GetTopic("t")!.Id, added.Responses[0].TopicId);
        var byName = await Fetch(f, full.SessionId, 2, [], version: 12);
        Assert.Equal((short)ErrorCode.FetchSessionTopicIdError, byName.ErrorCode);
    }

    [Fact]
    public async Task LongPollIncrementalFetchWakesWithOnlyTheNewPartition()
    {
        await using var f = new HandlerFixture();
        await f.CreateTopic("t", partitions: 4);
        var full = await Fetch(f, 0, 0, [("t", 0, 0), ("t", 1, 0), ("t", 2, 0), ("t", 3, 0)]);
        var waiting = Fetch(f, full.SessionId, 1, [], maxWaitMs: 10_000, minBytes: 1);
        await Task.Delay(100);
        Assert.False(waiting.IsCompleted);
        await f.Produce("t", 2, HandlerFixture.Batch("wake"));
        var woke = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal([(2, 1L, "wake")], Answered(woke));
    }

    [Fact]
    public async Task AnIncrementalConsumerOfManyPartitionsReadsEveryRecordExactlyOnce()
    {
        // A consumer as upstream's FetchSessionHandler drives one: a full fetch opening the session,
        // then incremental fetches naming only partitions whose offset moved, while a producer
        // writes to random partitions in between.
        const int partitions = 40, rounds = 30;
        await using var f = new HandlerFixture();
        await f.CreateTopic("many", partitions);
        var rng = new Random(7);
        var produced = Enumerable.Range(0, partitions).Select(_ => new List<string>()).ToArray();
        var consumed = Enumerable.Range(0, partitions).Select(_ => new List<string>()).ToArray();
        var offsets = new long[partitions];
        var sent = new long[partitions];
        int id = 0, epoch = 0;
        for (int round = 0; round <= rounds; round++)
        {
            if (round < rounds)
                for (int k = 0; k < 6; k++)
                {
                    int p = rng.Next(partitions);
                    var values = Enumerable.Range(0, rng.Next(1, 4)).Select(i => $"{round}-{k}-{i}").ToArray();
                    Assert.Equal(0, (await f.Produce("many", p, HandlerFixture.Batch(values))).ErrorCode);
                    produced[p].AddRange(values);
                }
            var changed = Enumerable.Range(0, partitions).Where(p => epoch == 0 || offsets[p] != sent[p]).Select(p => ("many", p, offsets[p])).ToArray();
            var r = await Fetch(f, id, epoch, changed, maxBytes: 600);
            Assert.Equal(0, r.ErrorCode);
            foreach (var p in changed) sent[p.Item2] = p.Item3;
            if (epoch == 0) { id = r.SessionId; Assert.NotEqual(0, id); }
            epoch++;
            foreach (var pd in r.Responses.SelectMany(t => t.Partitions))
            {
                var values = HandlerFixture.Values(pd);
                consumed[pd.PartitionIndex].AddRange(values);
                offsets[pd.PartitionIndex] += values.Count;
            }
        }
        // Drain what the byte limit held back.
        for (int i = 0; i < 100 && !Enumerable.Range(0, partitions).All(p => consumed[p].Count == produced[p].Count); i++)
        {
            var changed = Enumerable.Range(0, partitions).Where(p => offsets[p] != sent[p]).Select(p => ("many", p, offsets[p])).ToArray();
            var r = await Fetch(f, id, epoch++, changed, maxBytes: 600);
            foreach (var p in changed) sent[p.Item2] = p.Item3;
            foreach (var pd in r.Responses.SelectMany(t => t.Partitions))
            {
                var values = HandlerFixture.Values(pd);
                consumed[pd.PartitionIndex].AddRange(values);
                offsets[pd.PartitionIndex] += values.Count;
            }
        }
        for (int p = 0; p < partitions; p++) Assert.Equal(produced[p], consumed[p]);
        Assert.Equal(1, f.Broker.FetchSessions.ConsumerSessionsCreated);
        Assert.True(f.Broker.FetchSessions.ConsumerIncrementalFetches >= rounds);
    }

    [Fact]
    public async Task NoSlotsMeansNoSessions()
    {
        await using var f = new HandlerFixture(("max.incremental.fetch.session.cache.slots", "0"));
        await f.CreateTopic("t");
        var full = await Fetch(f, 0, 0, [("t", 0, 0)]);
        Assert.Equal((0, 0), (full.ErrorCode, full.SessionId));
        Assert.Single(Answered(full));
    }

    // The cache alone, with a clock the test moves: upstream FetchSessionCacheShard's eviction.
    private static int Create(FetchSessionCache cache, bool follower, int partitions)
    {
        var request = new FetchRequest { SessionId = 0, SessionEpoch = 0, ReplicaId = follower ? 2 : -1 };
        var topic = new FetchRequest.FetchTopic { Topic = "t" };
        var answer = new FetchResponse.FetchableTopicResponse { Topic = "t" };
        for (int p = 0; p < partitions; p++)
        {
            topic.Partitions.Add(new FetchRequest.FetchPartition { Partition = p });
            answer.Partitions.Add(new FetchResponse.PartitionData { PartitionIndex = p });
        }
        request.Topics.Add(topic);
        var context = cache.NewContext(request, 12, privileged: follower);
        return context.Finish(new FetchResponse { Responses = [answer] }).SessionId;
    }

    private static short Use(FetchSessionCache cache, int id, ref int epoch)
    {
        var context = cache.NewContext(new FetchRequest { SessionId = id, SessionEpoch = epoch }, 12, privileged: false);
        if (context.Error != ErrorCode.None) return (short)context.Error;
        epoch++;
        return context.Finish(new FetchResponse()).ErrorCode;
    }

    [Fact]
    public void EvictionFavoursFollowersThenSmallerOrStaleSessions()
    {
        long now = 1_000_000;
        var cache = new FetchSessionCache(maxSlots: 2, clock: () => now);
        int small = Create(cache, follower: false, partitions: 1);
        int big = Create(cache, follower: false, partitions: 5);
        Assert.True(small != 0 && big != 0);

        // Full, and both consumer sessions are young: another consumer gets no session.
        Assert.Equal(0, Create(cache, follower: false, partitions: 10));
        Assert.Equal(0, cache.Evictions);

        // A follower (privileged) may evict a consumer session: the smallest goes.
        int follower = Create(cache, follower: true, partitions: 3);
        Assert.NotEqual(0, follower);
        Assert.False(cache.Contains(small));
        Assert.True(cache.Contains(big));
        Assert.Equal(1, cache.Evictions);

        // Another follower may not evict a young follower session, but may evict the consumer one.
        int follower2 = Create(cache, follower: true, partitions: 1);
        Assert.NotEqual(0, follower2);
        Assert.False(cache.Contains(big));
        Assert.Equal(0, Create(cache, follower: true, partitions: 100));
        Assert.Equal(0, Create(cache, follower: false, partitions: 100));

        // Past 120 s, sessions become evictable by size: a consumer with more partitions than the
        // smaller follower session takes its slot once the cache entries are old...
        now += 121_000;
        int e1 = 1;
        Assert.Equal(0, Use(cache, follower, ref e1));   // used just now: the other is stale
        int consumer = Create(cache, follower: false, partitions: 1);
        Assert.NotEqual(0, consumer);
        Assert.False(cache.Contains(follower2));          // unused for > 120 s: evicted first
        Assert.True(cache.Contains(follower));

        // ...and a session in use is kept while a young one is not evictable by consumers.
        Assert.Equal(0, Create(cache, follower: false, partitions: 1));
        Assert.Equal(3, cache.Evictions);
        Assert.Equal(2, cache.Count);
    }
}
