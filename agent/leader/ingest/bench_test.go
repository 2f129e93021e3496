package ingest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/foresight-nomad/foresight/telemetry/wire"
	"github.com/foresight-nomad/foresight/telemetry/wire/ingestpb"
)

// discardSink counts samples and keeps nothing, so that the benchmark
// measures transport, decoding, validation and deduplication only.
type discardSink struct{ n atomic.Int64 }

func (d *discardSink) Ingest(_ string, samples []telemetry.Sample) error {
	d.n.Add(int64(len(samples)))
	return nil
}

// BenchmarkIngest200Streams measures the leader's ingest rate with 200
// agents streaming at once over loopback, each sending realistic batches
// (100 tasks × 11 metrics = 1100 samples, one agent's 10 s) and waiting for
// each ack before the next, as an agent in steady state does. An op is one
// batch. Both ends run in this process and share the machine's cores.
//
// "saturated" sends as fast as acks return: the rate is the capacity, and
// the ack latency is mostly queueing (200 batches wait at once). "at-goal"
// paces the agents to 500,000 samples/s in total: the ack latency an agent
// sees while the leader ingests at the goal rate.
func BenchmarkIngest200Streams(b *testing.B) {
	b.Run("saturated", func(b *testing.B) { benchIngest(b, 0) })
	const goal = 500_000 // samples/s
	b.Run("at-goal", func(b *testing.B) { benchIngest(b, time.Duration(float64(time.Second)*200*1100/goal)) })
}

// benchIngest runs 200 agent streams; each sends a batch every interval
// (0: as soon as the previous one is acked).
func benchIngest(b *testing.B, interval time.Duration) {
	const agents = 200
	sink := &discardSink{}
	srv, err := NewServer(ServerConfig{Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := srv.NewGRPCServer(nil)
	go g.Serve(lis)
	defer g.Stop()

	blk := wire.EncodeBlock(samplesAt(time.Now(), 100))
	perBatch := len(blk.Value)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := make([]ingestpb.Ingest_StreamClient, agents)
	for i := range agents {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		st, err := ingestpb.NewIngestClient(conn).Stream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Send(helloMsg(agentName(i), uint64(i+1), 1)); err != nil {
			b.Fatal(err)
		}
		streams[i] = st
	}
	latencies := make([][]time.Duration, agents)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range agents {
		n := b.N / agents
		if i < b.N%agents {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, msg := streams[i], batchMsg(agentName(i), 0, false, blk)
			lat := make([]time.Duration, 0, n)
			// Spread the agents' send times evenly over the interval.
			next := start.Add(interval * time.Duration(i) / agents)
			for k := range n {
				if interval > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(interval)
				}
				msg.GetBatch().Seq = uint64(k + 1)
				sent := time.Now()
				if err := st.Send(msg); err != nil {
					b.Error(err)
					return
				}
				r, err := st.Recv()
				if err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(sent))
				if ack := r.GetAck(); ack == nil || ack.Error != "" || ack.Duplicate {
					b.Errorf("agent %d batch %d: ack %v", i, k+1, r)
					return
				}
			}
			latencies[i] = lat
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if got := sink.n.Load(); got != int64(b.N*perBatch) {
		b.Fatalf("sink took %d samples, want %d", got, b.N*perBatch)
	}
	var ms []float64
	for _, d := range slices.Concat(latencies...) {
		ms = append(ms, d.Seconds()*1000)
	}
	slices.Sort(ms)
	b.ReportMetric(float64(b.N*perBatch)/elapsed.Seconds(), "samples/s")
	b.ReportMetric(forecast.SortedQuantile(ms, 0.50), "p50-ack-ms")
	b.ReportMetric(forecast.SortedQuantile(ms, 0.99), "p99-ack-ms")
}

func agentName(i int) string { return fmt.Sprintf("agent-%03d", i) }

// BenchmarkDecodeBatch is the leader's per-batch work without the network:
// unmarshal, decode and validate one 1100-sample batch on one core. It is
// the baseline the streaming benchmark's rate is compared with.
func BenchmarkDecodeBatch(b *testing.B) {
	raw, err := proto.Marshal(batchMsg("a", 1, false, wire.EncodeBlock(samplesAt(time.Now(), 100))))
	if err != nil {
		b.Fatal(err)
	}
	latest := time.Now().Add(time.Minute)
	var d wire.Decoder
	var out []telemetry.Sample
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for b.Loop() {
		m := &ingestpb.AgentMessage{}
		if err := proto.Unmarshal(raw, m); err != nil {
			b.Fatal(err)
		}
		if out, err = d.Decode(m.GetBatch().Samples, 16384, latest, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(out))/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(len(raw))/float64(len(out)), "bytes/sample")
}
