// sarama (Debian golang-github-shopify-sarama-dev, 1.22.1) against a ZooKeeper-mode cluster,
// bootstrapped at one broker only. Steps, each printed on stdout:
//  1. ClusterAdmin.CreateTopic with an explicit replica assignment (to the controller),
//     then waits until the client's Metadata shows a leader for every partition;
//  2. an idempotent SyncProducer (InitProducerId to any broker, Produce to each leader):
//     "produced P OFFSET";
//  3. a ConsumerGroup (FindCoordinator, JoinGroup/SyncGroup/Heartbeat at the coordinator,
//     OffsetFetch, Fetch at the leaders) marks every record; the session's end commits them
//     (OffsetCommit at the coordinator): "consumed P OFFSET VALUE";
//  4. the group's coordinator as sarama finds it through BOOTSTRAP and through ADMIN_BOOTSTRAP
//     ("coordinator ID", "admin-coordinator ID"); a ClusterAdmin bootstrapped at ADMIN_BOOTSTRAP
//     calls DescribeConsumerGroups and ListConsumerGroupOffsets (both sent to the
//     coordinator the client finds) while the member is still in the group ("group WHEN STATE
//     PROTOCOL MEMBERS", "offset P OFFSET"), and DescribeConsumerGroups again once it left.
//
// Client errors are printed as "error WHERE: MESSAGE" and make the exit code 1.
//
// Usage: sarama_cluster full BOOTSTRAP TOPIC GROUP COUNT ASSIGNMENT ADMIN_BOOTSTRAP
// where ASSIGNMENT is "0=2,1;1=3,1" (partition=replica ids, leader first); or
// sarama_cluster admin BOOTSTRAP TOPIC GROUP PARTITIONS ADMIN_BOOTSTRAP: step 4 alone, again
// ("group again STATE PROTOCOL MEMBERS"), e.g. after the coordinator moved.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

var failed bool

func fail(where string, err error) {
	fmt.Printf("error %s: %v\n", where, err)
	failed = true
}

func fatal(where string, err error) {
	fail(where, err)
	os.Exit(1)
}

func parseAssignment(s string) map[int32][]int32 {
	out := map[int32][]int32{}
	for _, part := range strings.Split(s, ";") {
		kv := strings.SplitN(part, "=", 2)
		p, err := strconv.Atoi(kv[0])
		if err != nil || len(kv) != 2 {
			fatal("usage", fmt.Errorf("bad assignment %q", part))
		}
		for _, r := range strings.Split(kv[1], ",") {
			id, err := strconv.Atoi(r)
			if err != nil {
				fatal("usage", fmt.Errorf("bad replica %q", r))
			}
			out[int32(p)] = append(out[int32(p)], int32(id))
		}
	}
	return out
}

func newConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "sarama-cluster-test"
	// sarama 1.22 picks request versions from the configured Kafka version (no ApiVersions
	// negotiation), and old ones even at 2.1: FindCoordinator v0, JoinGroup v1, OffsetFetch v1,
	// OffsetCommit v2, DescribeGroups v0, Fetch v4, Produce v3, Metadata v5, CreateTopics v2.
	// The idempotent producer needs at least 0.11.
	c.Version = sarama.V2_1_0_0
	c.Metadata.Retry.Max = 10
	c.Metadata.Retry.Backoff = 200 * time.Millisecond
	c.Net.DialTimeout = 5 * time.Second
	c.Net.ReadTimeout = 15 * time.Second
	c.Admin.Timeout = 10 * time.Second
	return c
}

type handler struct {
	mu       sync.Mutex
	seen     int
	want     int
	cancel   context.CancelFunc
	assigned map[int32]bool
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ps := range s.Claims() {
		for _, p := range ps {
			h.assigned[p] = true
		}
	}
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		s.MarkMessage(m, "")
		h.mu.Lock()
		fmt.Printf("consumed %d %d %s\n", m.Partition, m.Offset, string(m.Value))
		h.seen++
		if h.seen >= h.want {
			h.cancel()
		}
		h.mu.Unlock()
	}
	return nil
}

func describe(admin sarama.ClusterAdmin, group, when string) {
	groups, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		fail("describe-"+when, err)
		return
	}
	for _, g := range groups {
		if g.Err != sarama.ErrNoError {
			fail("describe-"+when, g.Err)
		}
		protocol := g.Protocol
		if protocol == "" {
			protocol = "-"
		}
		fmt.Printf("group %s %s %s %d\n", when, g.State, protocol, len(g.Members))
	}
}

const usage = `usage: sarama_cluster full BOOTSTRAP TOPIC GROUP COUNT ASSIGNMENT ADMIN_BOOTSTRAP
       sarama_cluster admin BOOTSTRAP TOPIC GROUP PARTITIONS ADMIN_BOOTSTRAP`

func main() {
	if !(len(os.Args) == 8 && os.Args[1] == "full") && !(len(os.Args) == 7 && os.Args[1] == "admin") {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Ltime|log.Lmicroseconds)
	bootstrap, topic, group := os.Args[2], os.Args[3], os.Args[4]
	brokers, adminBrokers := []string{bootstrap}, []string{os.Args[len(os.Args)-1]}
	if os.Args[1] == "admin" {
		// Step 4 only, for a group that an earlier full run left.
		partitions, err := strconv.Atoi(os.Args[5])
		if err != nil {
			fatal("usage", err)
		}
		printCoordinator("coordinator", brokers, group)
		printCoordinator("admin-coordinator", adminBrokers, group)
		admin, err := sarama.NewClusterAdmin(adminBrokers, newConfig())
		if err != nil {
			fatal("admin", err)
		}
		describe(admin, group, "again")
		listOffsets(admin, group, topic, int32(partitions))
		admin.Close()
		if failed {
			os.Exit(1)
		}
		return
	}
	count, err := strconv.Atoi(os.Args[5])
	if err != nil {
		fatal("usage", err)
	}
	assignment := parseAssignment(os.Args[6])
	partitions := int32(len(assignment))

	// 1. Topic.
	admin, err := sarama.NewClusterAdmin(brokers, newConfig())
	if err != nil {
		fatal("admin", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: -1, ReplicationFactor: -1, ReplicaAssignment: assignment}, false); err != nil {
		fatal("create-topic", err)
	}
	fmt.Printf("created %s %d\n", topic, partitions)
	waitForLeaders(brokers, topic, partitions)

	// 2. Idempotent producer; each record goes to partition i % partitions.
	pc := newConfig()
	pc.Producer.Idempotent = true
	pc.Producer.RequiredAcks = sarama.WaitForAll
	pc.Producer.Retry.Max = 5
	pc.Producer.Return.Successes = true
	pc.Producer.Partitioner = sarama.NewManualPartitioner
	pc.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer(brokers, pc)
	if err != nil {
		fatal("producer", err)
	}
	for i := 0; i < count; i++ {
		p, o, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: int32(i) % partitions,
			Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))})
		if err != nil {
			fatal("produce", err)
		}
		fmt.Printf("produced %d %d\n", p, o)
	}
	if err := producer.Close(); err != nil {
		fail("producer-close", err)
	}

	// 3. Consumer group; the session's end commits the marked offsets.
	cc := newConfig()
	cc.Consumer.Return.Errors = true
	cc.Consumer.Offsets.Initial = sarama.OffsetOldest
	cc.Consumer.Group.Session.Timeout = 10 * time.Second
	cc.Consumer.Group.Heartbeat.Interval = 1 * time.Second
	cg, err := sarama.NewConsumerGroup(brokers, group, cc)
	if err != nil {
		fatal("consumer-group", err)
	}
	go func() {
		for err := range cg.Errors() {
			fail("group", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	h := &handler{want: count, cancel: cancel, assigned: map[int32]bool{}}
	if err := cg.Consume(ctx, []string{topic}, h); err != nil {
		fail("consume", err)
	}
	if ctx.Err() == context.DeadlineExceeded {
		fail("consume", fmt.Errorf("consumed %d of %d records in 60 s", h.seen, count))
	}
	cancel()
	fmt.Printf("assigned %d\n", len(h.assigned))

	// 4. Admin at the coordinator: the member has not left yet (no LeaveGroup before Close).
	// The coordinator sarama finds through each bootstrap broker (FindCoordinator goes to the
	// seed first), for the caller to compare with the one the other brokers name.
	printCoordinator("coordinator", brokers, group)
	printCoordinator("admin-coordinator", adminBrokers, group)
	admin2, err := sarama.NewClusterAdmin(adminBrokers, newConfig())
	if err != nil {
		fatal("admin", err)
	}
	defer admin2.Close()
	admin = admin2
	describe(admin, group, "joined")
	listOffsets(admin, group, topic, partitions)
	if err := cg.Close(); err != nil {
		fail("consumer-group-close", err)
	}
	describe(admin, group, "left")
	if failed {
		os.Exit(1)
	}
}

func listOffsets(admin sarama.ClusterAdmin, group, topic string, partitions int32) {
	all := make([]int32, 0, partitions)
	for p := int32(0); p < partitions; p++ {
		all = append(all, p)
	}
	offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: all})
	if err != nil {
		fail("list-offsets", err)
		return
	}
	if offsets.Err != sarama.ErrNoError {
		fail("list-offsets", offsets.Err)
	}
	ps := make([]int, 0)
	for p := range offsets.Blocks[topic] {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	for _, p := range ps {
		b := offsets.Blocks[topic][int32(p)]
		if b.Err != sarama.ErrNoError {
			fail(fmt.Sprintf("list-offsets %d", p), b.Err)
		}
		fmt.Printf("offset %d %d\n", p, b.Offset)
	}
}

func printCoordinator(label string, brokers []string, group string) {
	client, err := sarama.NewClient(brokers, newConfig())
	if err != nil {
		fail(label, err)
		return
	}
	defer client.Close()
	if b, err := client.Coordinator(group); err != nil {
		fail(label, err)
	} else {
		fmt.Printf("%s %d\n", label, b.ID())
	}
}

// waitForLeaders refreshes Metadata until every partition of topic has a leader that itself
// answers as the leader. Samsa's brokers each apply the cluster state from ZooKeeper on their own
// (compat/FINDINGS.md), so the bootstrap broker can name a new leader some milliseconds before that
// leader serves the partition, and sarama 1.22's idempotent producer retries NOT_LEADER_OR_FOLLOWER
// without backoff (all retries spent within ~10 ms).
func waitForLeaders(brokers []string, topic string, partitions int32) {
	client, err := sarama.NewClient(brokers, newConfig())
	if err != nil {
		fatal("client", err)
	}
	defer client.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			fatal("metadata", fmt.Errorf("no leaders serving all %d partitions of %s", partitions, topic))
		}
		if err := client.RefreshMetadata(topic); err != nil {
			continue
		}
		ps, err := client.Partitions(topic)
		if err != nil || int32(len(ps)) != partitions {
			continue
		}
		serving := 0
		for _, p := range ps {
			if l, err := client.Leader(topic, p); err == nil && l != nil && leads(l, topic, p) {
				serving++
			}
		}
		if int32(serving) == partitions {
			return
		}
	}
}

// leads asks broker b itself whether it leads topic-partition.
func leads(b *sarama.Broker, topic string, partition int32) bool {
	md, err := b.GetMetadata(&sarama.MetadataRequest{Version: 1, Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Err != sarama.ErrNoError {
		return false
	}
	for _, p := range md.Topics[0].Partitions {
		if p.ID == partition {
			return p.Err == sarama.ErrNoError && p.Leader == b.ID()
		}
	}
	return false
}
