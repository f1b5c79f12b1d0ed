package cluster_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/cluster"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runPython runs one of the e2e tests' Python client scripts (test/e2e/python)
// and decodes its last stdout line, a JSON summary.
func runPython(t *testing.T, timeout time.Duration, out any, script string, args ...string) {
	t.Helper()
	full := append([]string{"-u", "-B", filepath.Join("..", "e2e", "python", script)}, args...)
	ctx := cluster.Ctx(t, timeout)
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), out); err != nil || jerr != nil {
		t.Fatalf("python %s %v: %v / %v\nstdout:\n%s\nstderr:\n%s", script, args, err, jerr, stdout.String(), stderr.String())
	}
}

// librdkafka (confluent_kafka) and kafka-python, bootstrapped from one
// broker, produce to and consume from partitions spread over three.
func TestClusterPythonClients(t *testing.T) {
	const n = 600
	c := cluster.Start(t, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := cluster.Ctx(t, 30*time.Second)
	for _, topic := range []string{"py-none", "py-zstd", "kp"} {
		if _, err := adm.CreateTopic(ctx, 6, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	var sum struct {
		OK     bool `json:"ok"`
		Codecs map[string]struct {
			OK         bool  `json:"ok"`
			Produced   int   `json:"produced"`
			Consumed   int   `json:"consumed"`
			Partitions []int `json:"partitions_used"`
		} `json:"codecs"`
	}
	runPython(t, 120*time.Second, &sum, "confluent_client.py", "roundtrip", "--bootstrap", c.Node(2).KafkaAddr(),
		"--prefix", "py-", "--n", strconv.Itoa(n), "--codecs", "none,zstd")
	if !sum.OK || len(sum.Codecs) != 2 {
		t.Fatalf("confluent_kafka summary: %+v", sum)
	}
	for codec, r := range sum.Codecs {
		if !r.OK || r.Produced != n || r.Consumed != n || len(r.Partitions) != 6 {
			t.Fatalf("confluent_kafka %s: %+v (want %d records over all 6 partitions)", codec, r, n)
		}
	}
	var prod, cons struct {
		OK       bool              `json:"ok"`
		Produced int               `json:"produced"`
		Records  []json.RawMessage `json:"records"`
	}
	runPython(t, 60*time.Second, &prod, "kafka_python_client.py", "produce", "--bootstrap", c.Node(3).KafkaAddr(),
		"--topic", "kp", "--tag", "kp", "--n", strconv.Itoa(n))
	if !prod.OK || prod.Produced != n {
		t.Fatalf("kafka-python produce: %+v", prod)
	}
	runPython(t, 90*time.Second, &cons, "kafka_python_client.py", "consume", "--bootstrap", c.Node(1).KafkaAddr(),
		"--topic", "kp", "--n", strconv.Itoa(n))
	if !cons.OK || len(cons.Records) != n {
		t.Fatalf("kafka-python consume: ok %v, %d records", cons.OK, len(cons.Records))
	}
}
