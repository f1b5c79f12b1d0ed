package e2e

// Real clients against the real binary: franz-go (every codec, 100k records
// each), kcat/librdkafka, Python confluent_kafka and kafka-python, data
// crossing between them, and the Fetch long poll.

import (
	"context"
	bin "encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var clientsCodecs = []struct {
	name  string
	codec kgo.CompressionCodec
	id    int8 // attributes & 7 of a stored batch
}{
	{"none", kgo.NoCompression(), 0},
	{"gzip", kgo.GzipCompression(), 1},
	{"snappy", kgo.SnappyCompression(), 2},
	{"lz4", kgo.Lz4Compression(), 3},
	{"zstd", kgo.ZstdCompression(), 4},
}

// clientsCheckStoredCodec fails unless the stored batches of topic use codec id,
// showing the broker keeps batches as the client sent them. Clients send a
// batch uncompressed when compressing would not shrink it (small tail
// batches), so codec 0 is allowed as long as some batch carries id.
func clientsCheckStoredCodec(t *testing.T, b *Broker, topic string, partitions int32, id int8) {
	t.Helper()
	cl := b.Client(t)
	ends, err := clientsAdmin(t, b).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	withID := 0
	for p := int32(0); p < partitions; p++ {
		if o, ok := ends.Lookup(topic, p); !ok || o.Offset == 0 {
			continue
		}
		for _, c := range clientsBatchCodecs(t, cl, topic, p) {
			if c != id && c != 0 {
				t.Fatalf("%s-%d: stored batch has codec %d, want %d", topic, p, c, id)
			}
			if c == id {
				withID++
			}
		}
	}
	if withID == 0 {
		t.Fatalf("%s: no stored batch has codec %d", topic, id)
	}
}

// clientsCheckLibrdkafkaCodec is clientsCheckStoredCodec for data produced by librdkafka,
// which sends lz4 batches uncompressed unless the broker lists
// FindCoordinator (its LZ4 feature is keyed on that API, rdkafka_feature.c).
// Until consumer groups advertise it, lz4 from librdkafka must still arrive
// intact but uncompressed; once it is advertised the check becomes strict.
func clientsCheckLibrdkafkaCodec(t *testing.T, b *Broker, topic string, partitions int32, id int8) {
	t.Helper()
	if id == 3 {
		vs, err := clientsAdmin(t, b).ApiVersions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		gated := true
		vs.Each(func(bv kadm.BrokerApiVersions) {
			if _, _, ok := bv.KeyVersions(10); ok {
				gated = false
			}
		})
		if gated {
			clientsCheckStoredCodec(t, b, topic, partitions, 0)
			t.Logf("%s: librdkafka sent lz4 uncompressed (FindCoordinator not advertised)", topic)
			return
		}
	}
	clientsCheckStoredCodec(t, b, topic, partitions, id)
}

// TestClientsFranzCodecsRoundTrip produces 100,000 keyed records with headers
// per codec (acks=all, idempotent) to 6 partitions and consumes them back:
// every record once, byte-identical, at the partition/offset the produce
// acknowledged, offsets dense and in produce order per partition.
func TestClientsFranzCodecsRoundTrip(t *testing.T) {
	const n = 100_000
	const partitions = 6
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	for _, c := range clientsCodecs {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			topic := "franz-" + c.name
			clientsCreateTopic(t, adm, topic, partitions, nil)
			prod := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.codec),
				kgo.ProducerLinger(5*time.Millisecond), kgo.RequiredAcks(kgo.AllISRAcks()))
			ctx := Ctx(t, 90*time.Second)

			type placed struct {
				p int32
				o int64
			}
			where := make([]placed, n)
			var mu sync.Mutex
			var produceErr error
			for i := 0; i < n; i++ {
				r := &kgo.Record{
					Key:   []byte(clientsKey(c.name, i)),
					Value: []byte(clientsValue(c.name, i)),
					Headers: []kgo.RecordHeader{
						{Key: "idx", Value: []byte(strconv.Itoa(i))},
						{Key: "codec", Value: []byte(c.name)},
					},
				}
				prod.Produce(ctx, r, func(r *kgo.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						produceErr = errors.Join(produceErr, err)
						return
					}
					where[i] = placed{r.Partition, r.Offset}
				})
			}
			if err := prod.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			if produceErr != nil {
				t.Fatalf("produce: %v", produceErr)
			}
			mu.Unlock()
			produced := time.Since(start)

			recs := clientsConsumeKgo(t, b, topic, n, 60*time.Second)
			clientsCheckDataset(t, "franz "+c.name, recs, c.name, n, func(i int) [][]string {
				return [][]string{{"idx", strconv.Itoa(i)}, {"codec", c.name}}
			})
			used := map[int32]bool{}
			mu.Lock()
			for _, r := range recs {
				_, i, _ := clientsParseValue(r.Value)
				if w := where[i]; w.p != r.Partition || w.o != r.Offset {
					t.Fatalf("record %d consumed at %d/%d, produce acknowledged %d/%d", i, r.Partition, r.Offset, w.p, w.o)
				}
				used[r.Partition] = true
			}
			mu.Unlock()
			if len(used) != partitions {
				t.Fatalf("records landed in %d partitions, want all %d", len(used), partitions)
			}
			clientsCheckStoredCodec(t, b, topic, partitions, c.id)
			t.Logf("%s: produced in %v, total %v", c.name, produced.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestClientsKcat produces with kcat (librdkafka) with every codec, keys,
// headers and acks -1, 1 and 0, consumes back with a -f format and checks
// every record; kcat -L lists the topics and partitions.
func TestClientsKcat(t *testing.T) {
	const per = 150 // records per acks setting
	acks := []string{"-1", "1", "0"}
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	for _, c := range clientsCodecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "kcat-" + c.name
			tag := "kcat" + c.name
			clientsCreateTopic(t, adm, topic, 3, nil)
			for ai, a := range acks {
				var lines []string
				for i := ai * per; i < (ai+1)*per; i++ {
					lines = append(lines, clientsKey(tag, i)+":"+clientsValue(tag, i))
				}
				kcatProduce(t, b, topic, lines, "-z", c.name, "-H", "src=kcat", "-H", "acks="+a, "-X", "acks="+a)
			}
			// acks=0 gets no answer: wait until the records are readable.
			var recs []clientsRecord
			CheckFor(t, 30*time.Second, func() error {
				recs = kcatConsume(t, b, topic)
				if len(recs) < len(acks)*per {
					return fmt.Errorf("kcat consumed %d of %d records", len(recs), len(acks)*per)
				}
				return nil
			})
			clientsCheckDataset(t, "kcat "+c.name, recs, tag, len(acks)*per, func(i int) [][]string {
				return [][]string{{"src", "kcat"}, {"acks", acks[i/per]}}
			})
			clientsCheckLibrdkafkaCodec(t, b, topic, 3, c.id)
		})
	}
	out := clientsRun(t, 30*time.Second, "", "kcat", "-b", b.Addr, "-L")
	for _, c := range clientsCodecs {
		if !strings.Contains(out, fmt.Sprintf("topic \"kcat-%s\" with 3 partitions:", c.name)) {
			t.Fatalf("kcat -L does not list kcat-%s with 3 partitions:\n%s", c.name, out)
		}
	}
	out = clientsRun(t, 30*time.Second, "", "kcat", "-b", b.Addr, "-L", "-t", "kcat-zstd")
	for p := 0; p < 3; p++ {
		if !strings.Contains(out, fmt.Sprintf("partition %d, leader 1, replicas: 1, isrs: 1", p)) {
			t.Fatalf("kcat -L -t kcat-zstd lacks partition %d:\n%s", p, out)
		}
	}
	if !strings.Contains(out, "broker 1 at "+b.Addr) {
		t.Fatalf("kcat -L does not show broker 1 at %s:\n%s", b.Addr, out)
	}
}

// TestClientsPythonConfluent runs python/confluent_client.py: per codec it
// produces keyed records with headers (acks=all), consumes them with
// assign() and checks content, placement and order; the Go side then checks
// what the broker stored.
func TestClientsPythonConfluent(t *testing.T) {
	const n = 5000
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	for _, c := range clientsCodecs {
		clientsCreateTopic(t, adm, "py-"+c.name, 4, nil)
	}
	var sum struct {
		OK     bool `json:"ok"`
		Codecs map[string]struct {
			OK         bool     `json:"ok"`
			Produced   int      `json:"produced"`
			Consumed   int      `json:"consumed"`
			Partitions []int    `json:"partitions_used"`
			Problems   []string `json:"problems"`
		} `json:"codecs"`
	}
	clientsRunPython(t, 120*time.Second, false, &sum, "confluent_client.py", "roundtrip", "--bootstrap", b.Addr,
		"--prefix", "py-", "--n", strconv.Itoa(n))
	if !sum.OK || len(sum.Codecs) != len(clientsCodecs) {
		t.Fatalf("python summary: %+v", sum)
	}
	for _, c := range clientsCodecs {
		r := sum.Codecs[c.name]
		if !r.OK || r.Produced != n || r.Consumed != n || len(r.Partitions) < 2 || len(r.Problems) != 0 {
			t.Fatalf("python %s: %+v", c.name, r)
		}
		recs := clientsConsumeKgo(t, b, "py-"+c.name, n, 30*time.Second)
		clientsCheckDataset(t, "python "+c.name+" read by franz-go", recs, c.name, n, func(i int) [][]string {
			return [][]string{{"idx", strconv.Itoa(i)}, {"codec", c.name}}
		})
		clientsCheckLibrdkafkaCodec(t, b, "py-"+c.name, 4, c.id)
	}
}

type clientsKafkaPythonSummary struct {
	OK         bool            `json:"ok"`
	Produced   int             `json:"produced"`
	Partitions []int32         `json:"partitions"`
	Error      string          `json:"error"`
	Detail     string          `json:"detail"`
	Records    []clientsRecord `json:"records"`
}

// TestClientsKafkaPythonAutoCreate: kafka-python's Metadata v1 has no
// allow-auto-create field, so with the broker default a produce to a new
// topic creates it (3 partitions); with --auto-create-topics=false the
// produce fails and no topic appears.
func TestClientsKafkaPythonAutoCreate(t *testing.T) {
	const n = 60
	kpHeaders := func(i int) [][]string { return [][]string{{"idx", strconv.Itoa(i)}, {"src", "kafka-python"}} }
	t.Run("enabled", func(t *testing.T) {
		b := StartBroker(t)
		var prod clientsKafkaPythonSummary
		clientsRunPython(t, 60*time.Second, false, &prod, "kafka_python_client.py", "produce", "--bootstrap", b.Addr,
			"--topic", "kp-auto", "--tag", "kp", "--n", strconv.Itoa(n))
		if !prod.OK || prod.Produced != n {
			t.Fatalf("kafka-python produce: %+v", prod)
		}
		td, err := clientsAdmin(t, b).ListTopics(context.Background(), "kp-auto")
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := td["kp-auto"]; !ok || d.Err != nil || len(d.Partitions) != 3 {
			t.Fatalf("auto-created topic: %+v", td)
		}
		var cons clientsKafkaPythonSummary
		clientsRunPython(t, 90*time.Second, false, &cons, "kafka_python_client.py", "consume", "--bootstrap", b.Addr,
			"--topic", "kp-auto", "--n", strconv.Itoa(n))
		clientsCheckDataset(t, "kafka-python consume", cons.Records, "kp", n, kpHeaders)
		viaFranz := clientsConsumeKgo(t, b, "kp-auto", n, 30*time.Second)
		clientsSame(t, "kafka-python vs franz-go consume", cons.Records, viaFranz)
	})
	t.Run("disabled", func(t *testing.T) {
		b := StartBroker(t, "--auto-create-topics=false")
		var prod clientsKafkaPythonSummary
		err := clientsRunPython(t, 60*time.Second, true, &prod, "kafka_python_client.py", "produce", "--bootstrap", b.Addr,
			"--topic", "kp-refused", "--tag", "kp", "--n", "5", "--max-block-ms", "3000")
		if err == nil || prod.OK {
			t.Fatalf("produce to a missing topic with auto-create off succeeded: %+v", prod)
		}
		if prod.Error != "KafkaTimeoutError" {
			t.Fatalf("kafka-python failed with %s (%s), want KafkaTimeoutError waiting for metadata", prod.Error, prod.Detail)
		}
		td, err := clientsAdmin(t, b).ListTopics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if td.Has("kp-refused") {
			t.Fatalf("topic kp-refused exists although auto-create is off: %+v", td)
		}
	})
}

// TestClientsCrossClient moves one data set through each pair of clients:
// kcat -> franz-go + Python, franz-go -> kcat + Python, Python -> franz-go +
// kcat; every reader must see the same records, checked one by one.
func TestClientsCrossClient(t *testing.T) {
	const n = 500
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	pyConsume := func(topic string) []clientsRecord {
		var s clientsKafkaPythonSummary
		clientsRunPython(t, 90*time.Second, false, &s, "confluent_client.py", "consume", "--bootstrap", b.Addr,
			"--topic", topic, "--n", strconv.Itoa(n))
		return s.Records
	}

	t.Run("kcat-to-franz-python", func(t *testing.T) {
		clientsCreateTopic(t, adm, "x-kcat", 3, nil)
		var lines []string
		for i := 0; i < n; i++ {
			lines = append(lines, clientsKey("xkcat", i)+":"+clientsValue("xkcat", i))
		}
		kcatProduce(t, b, "x-kcat", lines, "-z", "lz4", "-H", "src=kcat", "-X", "acks=all")
		viaFranz := clientsConsumeKgo(t, b, "x-kcat", n, 30*time.Second)
		clientsCheckDataset(t, "kcat->franz", viaFranz, "xkcat", n, func(int) [][]string { return [][]string{{"src", "kcat"}} })
		clientsSame(t, "kcat->franz vs kcat->python", viaFranz, pyConsume("x-kcat"))
	})

	t.Run("franz-to-kcat-python", func(t *testing.T) {
		clientsCreateTopic(t, adm, "x-franz", 3, nil)
		cl := b.Client(t, kgo.DefaultProduceTopic("x-franz"), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
		var rs []*kgo.Record
		for i := 0; i < n; i++ {
			rs = append(rs, &kgo.Record{Key: []byte(clientsKey("xfranz", i)), Value: []byte(clientsValue("xfranz", i)),
				Headers: []kgo.RecordHeader{{Key: "idx", Value: []byte(strconv.Itoa(i))}, {Key: "src", Value: []byte("franz")}}})
		}
		if err := cl.ProduceSync(Ctx(t, 30*time.Second), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		viaKcat := kcatConsume(t, b, "x-franz")
		clientsCheckDataset(t, "franz->kcat", viaKcat, "xfranz", n, func(i int) [][]string {
			return [][]string{{"idx", strconv.Itoa(i)}, {"src", "franz"}}
		})
		clientsSame(t, "franz->kcat vs franz->python", viaKcat, pyConsume("x-franz"))
		clientsSame(t, "franz->kcat vs franz->franz", viaKcat, clientsConsumeKgo(t, b, "x-franz", n, 30*time.Second))
	})

	t.Run("python-to-franz-kcat", func(t *testing.T) {
		clientsCreateTopic(t, adm, "x-python", 3, nil)
		var s clientsKafkaPythonSummary
		clientsRunPython(t, 60*time.Second, false, &s, "confluent_client.py", "produce", "--bootstrap", b.Addr,
			"--topic", "x-python", "--tag", "xpy", "--codec", "snappy", "--n", strconv.Itoa(n))
		if !s.OK || s.Produced != n {
			t.Fatalf("python produce: %+v", s)
		}
		viaFranz := clientsConsumeKgo(t, b, "x-python", n, 30*time.Second)
		clientsCheckDataset(t, "python->franz", viaFranz, "xpy", n, func(i int) [][]string {
			return [][]string{{"idx", strconv.Itoa(i)}, {"src", "python"}}
		})
		clientsSame(t, "python->franz vs python->kcat", viaFranz, kcatConsume(t, b, "x-python"))
	})
}

// clientsFetchCounter counts Fetch requests a client writes and signals each one.
type clientsFetchCounter struct {
	n       atomic.Int32
	written chan struct{}
}

func (f *clientsFetchCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil {
		f.n.Add(1)
		select {
		case f.written <- struct{}{}:
		default:
		}
	}
}

// TestClientsLongPollWakesOnProduce: a consumer parked at the log end (max
// wait 30 s) is held by the broker rather than answered empty, and gets a
// record produced meanwhile long before the max wait.
func TestClientsLongPollWakesOnProduce(t *testing.T) {
	const maxWait = 30 * time.Second
	b := StartBroker(t)
	clientsCreateTopic(t, clientsAdmin(t, b), "longpoll", 1, nil)
	hook := &clientsFetchCounter{written: make(chan struct{}, 1)}
	cons := b.Client(t, kgo.ConsumeTopics("longpoll"), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(maxWait), kgo.WithHooks(hook))

	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *kgo.Record, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			if recs := fs.Records(); len(recs) > 0 {
				got <- recs[0]
				return
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	select {
	case <-hook.written:
	case <-time.After(20 * time.Second):
		t.Fatal("consumer never sent a Fetch")
	}
	// The first fetch found nothing; a broker that answers it at once instead
	// of holding it would make the client send more within this window.
	hold := time.NewTimer(300 * time.Millisecond)
	<-hold.C
	if n := hook.n.Load(); n != 1 {
		t.Fatalf("%d fetches sent while the log was idle; the broker does not hold fetches (max wait %v)", n, maxWait)
	}

	start := time.Now()
	if err := b.Client(t).ProduceSync(Ctx(t, 10*time.Second), &kgo.Record{Topic: "longpoll", Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if string(r.Value) != "wake" || r.Offset != 0 {
			t.Fatalf("got %q at %d", r.Value, r.Offset)
		}
		t.Logf("record arrived %v after produce started (max wait %v), %d fetches", time.Since(start), maxWait, hook.n.Load())
	case <-time.After(maxWait / 2):
		t.Fatalf("record produced %v ago not delivered to the waiting consumer", maxWait/2)
	}
}

// TestClientsProduceV0ListedNotServed: ApiVersions lists Produce from v0 (so
// older librdkafka compresses gzip/snappy), but a Produce below v3 is still
// refused by closing the connection, and the broker keeps serving.
func TestClientsProduceV0ListedNotServed(t *testing.T) {
	b := StartBroker(t)
	vs, err := clientsAdmin(t, b).ApiVersions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	vs.Each(func(bv kadm.BrokerApiVersions) {
		if lo, hi, ok := bv.KeyVersions(0); !ok || lo != 0 || hi < 9 {
			t.Fatalf("ApiVersions lists Produce %d-%d (present %v), want 0-9+", lo, hi, ok)
		}
	})
	nc, err := net.DialTimeout("tcp", b.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Produce v2: key 0, version 2, correlation 7, null client id; body acks
	// 1, timeout 1000, no topics.
	body := []byte{0, 0, 0, 2, 0, 0, 0, 7, 0xff, 0xff, 0, 1, 0, 0, 3, 0xe8, 0, 0, 0, 0}
	frame := append(bin.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := nc.Read(make([]byte, 64))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Produce v2 answered (%d bytes, %v); want the connection closed", n, err)
	}
	cl := b.Client(t, kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(Ctx(t, 10*time.Second), &kgo.Record{Topic: "after-v2", Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatalf("broker not serving after a Produce v2: %v", err)
	}
}

// TestClientsShutdownAnswersParkedFetch: SIGTERM while a consumer's fetch is
// parked at the log end (max wait 25 s) stops the broker promptly instead of
// holding the shutdown until the long poll expires.
func TestClientsShutdownAnswersParkedFetch(t *testing.T) {
	const maxWait = 25 * time.Second
	b := StartBroker(t)
	clientsCreateTopic(t, clientsAdmin(t, b), "parked", 1, nil)
	hook := &clientsFetchCounter{written: make(chan struct{}, 1)}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics("parked"), kgo.FetchMaxWait(maxWait), kgo.WithHooks(hook))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() { defer close(polled); cons.PollFetches(ctx) }()
	defer func() { cancel(); <-polled; cons.Close() }()
	select {
	case <-hook.written:
	case <-time.After(20 * time.Second):
		t.Fatal("consumer never sent a Fetch")
	}
	start := time.Now()
	b.Stop()
	if took := time.Since(start); took > maxWait/2 {
		t.Fatalf("graceful stop took %v with a fetch parked (max wait %v)", took, maxWait)
	} else {
		t.Logf("graceful stop took %v with a fetch parked", took)
	}
}
