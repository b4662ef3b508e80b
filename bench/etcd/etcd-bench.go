// etcd-bench drives an etcd v3 server with the same workloads, concurrency
// and report as corral-bench, through etcd's own Go client (clientv3), so
// that Corral, Apache ZooKeeper and etcd are measured side by side.
//
//	etcd-bench --endpoints 127.0.0.1:2379 --workload set --sessions 16 --depth 16 --duration 5 --json
//
// Each session is one client (one gRPC connection); each runs `depth`
// requests in flight. Workloads, mapped onto etcd:
//
//	create   a put of a key never written before (a new znode)
//	set      a put of one of --keys existing keys (setData)
//	get      a serializable range of one key: served by the member itself
//	         without asking the leader, as a ZooKeeper read is
//	syncget  a linearizable range of one key (etcd's default read), the
//	         counterpart of ZooKeeper's sync-then-read
//	mixed    --read-ratio serializable gets, the rest puts
//
// Built by bench/etcd_side_by_side.py with Debian's golang-go and
// golang-etcd-server-dev (GOPATH mode); it is a benchmark tool, not part of
// Corral.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

type report struct {
	Workload  string  `json:"workload"`
	Sessions  int     `json:"sessions"`
	Depth     int     `json:"depth"`
	ValueSize int     `json:"value_size"`
	Keys      int64   `json:"keys"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p999_ms"`
	Max       float64 `json:"max_ms"`
}

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client URLs or host:port")
	workload := flag.String("workload", "set", "create | set | get | syncget | mixed")
	readRatio := flag.Float64("read-ratio", 0.9, "mixed: share of reads")
	sessions := flag.Int("sessions", 16, "clients, each its own connection")
	depth := flag.Int("depth", 16, "requests in flight per client")
	valueSize := flag.Int("value-size", 100, "bytes per value")
	keys := flag.Int64("keys", 10000, "keys set, get and mixed spread over")
	duration := flag.Float64("duration", 10, "seconds to run (unless --ops)")
	ops := flag.Int64("ops", 0, "operations to run (instead of --duration)")
	prefix := flag.String("prefix", "/etcd-bench", "where the keys live")
	asJSON := flag.Bool("json", false, "print the report as one JSON object")
	quiet := flag.Bool("quiet", false, "no progress lines")
	flag.Parse()

	switch *workload {
	case "create", "set", "get", "syncget", "mixed":
	default:
		fmt.Fprintf(os.Stderr, "etcd-bench: unknown workload %q\n", *workload)
		os.Exit(2)
	}
	if *sessions < 1 || *depth < 1 || *keys < 1 || *valueSize < 0 {
		fmt.Fprintln(os.Stderr, "etcd-bench: --sessions, --depth and --keys must be positive")
		os.Exit(2)
	}

	clients := make([]*clientv3.Client, *sessions)
	for i := range clients {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   strings.Split(*endpoints, ","),
			DialTimeout: 10 * time.Second,
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcd-bench: %v\n", err)
			os.Exit(1)
		}
		defer c.Close()
		clients[i] = c
	}
	value := strings.Repeat("v", *valueSize)
	key := func(k int64) string { return fmt.Sprintf("%s/k-%d", *prefix, k) }

	// The keys that set, get and mixed use exist before the clock starts.
	if *workload != "create" {
		var wg sync.WaitGroup
		var next int64 = -1
		var failed atomic.Int64
		for i := 0; i < *sessions**depth; i++ {
			wg.Add(1)
			go func(c *clientv3.Client) {
				defer wg.Done()
				for k := atomic.AddInt64(&next, 1); k < *keys; k = atomic.AddInt64(&next, 1) {
					if _, err := c.Put(context.Background(), key(k), value); err != nil {
						failed.Add(1)
					}
				}
			}(clients[i%*sessions])
		}
		wg.Wait()
		if failed.Load() > 0 {
			fmt.Fprintf(os.Stderr, "etcd-bench: %d puts of the initial keys failed\n", failed.Load())
			os.Exit(1)
		}
	}

	var issued, done, errs atomic.Int64
	deadline := time.Now().Add(time.Duration(*duration * float64(time.Second)))
	more := func() bool {
		if *ops > 0 {
			return issued.Add(1) <= *ops
		}
		return time.Now().Before(deadline)
	}
	lat := make([][]uint32, *sessions**depth)
	var firstErr atomic.Value
	start := time.Now()
	stopProgress := make(chan struct{})
	if !*quiet {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			last := int64(0)
			for {
				select {
				case <-stopProgress:
					return
				case now := <-t.C:
					d := done.Load()
					fmt.Fprintf(os.Stderr, "%6.1fs  %10d ops  %10d ops/s\n", now.Sub(start).Seconds(), d, d-last)
					last = d
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < *sessions**depth; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clients[w%*sessions]
			rng := rand.New(rand.NewSource(int64(w) + 1))
			mine := make([]uint32, 0, 1<<16)
			for n := 0; more(); n++ {
				k := rng.Int63n(*keys)
				t0 := time.Now()
				var err error
				switch *workload {
				case "create":
					_, err = c.Put(context.Background(), fmt.Sprintf("%s/c-%d-%d", *prefix, w, n), value)
				case "set":
					_, err = c.Put(context.Background(), key(k), value)
				case "get":
					_, err = c.Get(context.Background(), key(k), clientv3.WithSerializable())
				case "syncget":
					_, err = c.Get(context.Background(), key(k))
				case "mixed":
					if rng.Float64() < *readRatio {
						_, err = c.Get(context.Background(), key(k), clientv3.WithSerializable())
					} else {
						_, err = c.Put(context.Background(), key(k), value)
					}
				}
				us := time.Since(t0).Microseconds()
				if us > math.MaxUint32 {
					us = math.MaxUint32
				}
				mine = append(mine, uint32(us))
				done.Add(1)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
			lat[w] = mine
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	close(stopProgress)

	var all []uint32
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(math.Ceil(p/100*float64(len(all)))) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(all) {
			i = len(all) - 1
		}
		return float64(all[i]) / 1000
	}
	r := report{Workload: *workload, Sessions: *sessions, Depth: *depth, ValueSize: *valueSize,
		Keys: *keys, Ops: done.Load(), Errors: errs.Load(), Seconds: elapsed,
		OpsPerSec: float64(done.Load()) / elapsed,
		P50:       pct(50), P99: pct(99), P999: pct(99.9), Max: pct(100)}
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "error: %s\n", e)
	}
	if *asJSON {
		out, _ := json.Marshal(r)
		fmt.Println(string(out))
	} else {
		fmt.Printf("%s: %d ops in %.2f s = %.0f ops/s; latency ms p50 %.3f p99 %.3f p99.9 %.3f max %.3f; errors %d\n",
			r.Workload, r.Ops, r.Seconds, r.OpsPerSec, r.P50, r.P99, r.P999, r.Max, r.Errors)
	}
	if r.Errors > 0 {
		os.Exit(1)
	}
}
