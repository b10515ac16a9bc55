package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provlog/provlog/client"
	"github.com/provlog/provlog/internal/testbin"
	"github.com/provlog/provlog/log/ledger"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestWitnessedPublication runs provlogd with a policy of three real
// provwitness processes and a quorum of two, and checks the issue's
// promises from outside, with x/mod/sumdb code and cosignature/v1
// verifiers: every published checkpoint carries >= 2 valid cosignatures;
// with one witness killed appends still publish; with two killed nothing is
// published (fail-closed), appends waiting for publication get Unavailable
// after --publish-timeout while sequenced appends are still acknowledged;
// with the witnesses restarted publication resumes with a checkpoint
// consistent with the last one before the outage that holds every
// acknowledged event.
func TestWitnessedPublication(t *testing.T) {
	const (
		origin         = "witness-e2e.example/log"
		publishTimeout = 3 * time.Second
		witnessTimeout = time.Second
	)
	testStart := time.Now()
	wbin := provwitnessBinary(t)
	dataDir := t.TempDir()
	// The log's key first, so the witnesses can be told it; provlogd finds
	// and reuses it.
	if _, _, err := ledger.LoadOrCreateKeys(dataDir, origin, defaultOrigin); err != nil {
		t.Fatal(err)
	}
	logPub, err := os.ReadFile(filepath.Join(dataDir, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	logVKey := strings.TrimSpace(string(logPub))

	ws := make([]*witnessProc, 3)
	var policyText strings.Builder
	for i := range ws {
		ws[i] = startWitness(t, wbin, fmt.Sprintf("w%d", i+1), origin+" "+logVKey)
		fmt.Fprintf(&policyText, "witness %s %s http://%s/\n", ws[i].name, ws[i].vkey, ws[i].addr)
	}
	policyText.WriteString("group two-of-three 2 w1 w2 w3\nquorum two-of-three\n")
	policyFile := filepath.Join(t.TempDir(), "witnesses.policy")
	if err := os.WriteFile(policyFile, []byte(policyText.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	policy, err := client.ParsePolicy(logVKey, []byte(policyText.String()))
	if err != nil {
		t.Fatal(err)
	}
	logV, err := note.NewVerifier(logVKey)
	if err != nil {
		t.Fatal(err)
	}
	verifiers := []note.Verifier{logV}
	for _, w := range ws {
		verifiers = append(verifiers, w.verifier)
	}

	d := startDaemon(t, dataDir, "--origin", origin, "--witness-policy", policyFile,
		"--witness-timeout", witnessTimeout.String(), "--publish-timeout", publishTimeout.String())
	t.Logf("provlogd with 3 witnesses up %v after the test started (includes building both binaries)", time.Since(testStart).Round(time.Millisecond))
	mon := startCheckpointMonitor(t, d)

	// witnessed checks one published checkpoint with x/mod's note.Open over
	// the log key and the three cosignature/v1 verifiers (any invalid
	// signature by one of them fails it), requires >= 2 cosignatures with
	// sane timestamps, and checks it against the client's policy too.
	witnessed := func(raw []byte) (checkpoint, []string) {
		t.Helper()
		n, err := note.Open(raw, note.VerifierList(verifiers...))
		if err != nil {
			t.Fatalf("checkpoint does not verify with the log key and the witnesses' keys: %v\n%s", err, raw)
		}
		var cosigners []string
		for _, s := range n.Sigs {
			if s.Name == logV.Name() && s.Hash == logV.KeyHash() {
				continue
			}
			ts, err := fnote.CoSigV1Timestamp(s)
			if err != nil || ts.Before(testStart.Add(-time.Minute)) || ts.After(time.Now().Add(time.Minute)) {
				t.Fatalf("cosignature by %s has timestamp %v (%v)", s.Name, ts, err)
			}
			cosigners = append(cosigners, s.Name)
		}
		if len(cosigners) < 2 {
			t.Fatalf("published checkpoint has %d cosignatures (%v), want >= 2\n%s", len(cosigners), cosigners, raw)
		}
		if _, err := policy.VerifyCheckpoint(raw); err != nil {
			t.Fatalf("client policy refuses a published checkpoint: %v\n%s", err, raw)
		}
		return openCheckpoint(t, logV, raw), cosigners
	}

	_, _, samples := loadSamples(t)
	seq := 0
	newEvent := func(phase string) *pb.ProvenanceEvent {
		seq++
		ev := proto.Clone(samples[seq%len(samples)]).(*pb.ProvenanceEvent)
		ev.EventId = fmt.Sprintf("witness-e2e:%s:%d", phase, seq)
		return ev
	}
	type ack struct {
		event    *pb.ProvenanceEvent
		leafHash []byte
	}
	acked := map[uint64]ack{}
	record := func(idx uint64, hash []byte, ev *pb.ProvenanceEvent) {
		t.Helper()
		if prev, ok := acked[idx]; ok {
			t.Fatalf("index %d acknowledged for %s and %s", idx, prev.event.GetEventId(), ev.GetEventId())
		}
		acked[idx] = ack{ev, hash}
	}
	checkReceipt := func(r *pb.Receipt, ev *pb.ProvenanceEvent) {
		t.Helper()
		v, err := client.VerifyReceiptWithPolicy(r, policy)
		if err != nil {
			t.Fatalf("receipt for %s: %v", ev.GetEventId(), err)
		}
		if !proto.Equal(v.Entry.GetEvent(), ev) {
			t.Fatalf("receipt leaf holds %v, sent %v", v.Entry.GetEvent(), ev)
		}
		witnessed(r.GetCheckpoint())
	}
	// appendPublished appends n events one at a time, waiting for
	// publication, and returns the latencies.
	appendPublished := func(phase string, n int) []time.Duration {
		t.Helper()
		var lat []time.Duration
		for range n {
			ev := newEvent(phase)
			start := time.Now()
			resp, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
			if err != nil {
				t.Fatalf("%s: Append WAIT_FOR_PUBLISHED: %v (after %v)", phase, err, time.Since(start))
			}
			lat = append(lat, time.Since(start))
			checkReceipt(resp.GetReceipt(), ev)
			record(resp.GetIndex(), resp.GetLeafHash(), ev)
		}
		return lat
	}
	appendBatch := func(phase string, n int, wait pb.WaitFor) *pb.AppendBatchResponse {
		t.Helper()
		evs := make([]*pb.ProvenanceEvent, n)
		for i := range evs {
			evs[i] = newEvent(phase)
		}
		resp, err := d.client().AppendBatch(d.ctx(), &pb.AppendBatchRequest{Events: evs, Wait: wait})
		if err != nil {
			t.Fatalf("%s: AppendBatch %v: %v", phase, wait, err)
		}
		for i, r := range resp.GetResults() {
			if r.GetError() != nil {
				t.Fatalf("%s: batch event %d: %v", phase, i, r.GetError())
			}
			if wait == pb.WaitFor_WAIT_FOR_PUBLISHED {
				checkReceipt(r.GetReceipt(), evs[i])
			}
			record(r.GetIndex(), r.GetLeafHash(), evs[i])
		}
		return resp
	}

	// All three witnesses up.
	cp0, cosigners := witnessed(mustGet(t, d, "/log/checkpoint"))
	t.Logf("first checkpoint (size %d) cosigned by %v", cp0.size, cosigners)
	lat3 := appendPublished("three", 8)
	appendBatch("three-batch", 20, pb.WaitFor_WAIT_FOR_PUBLISHED)
	t.Logf("3 witnesses up: Append WAIT_FOR_PUBLISHED latency %s", latencies(lat3))

	// Tessera stops waiting for the third witness once two have cosigned
	// and cancels its request. That is not a failure of a healthy witness:
	// no request may be counted as an error while all three are up.
	_, body := d.rest("GET", "/metrics", nil)
	for _, w := range ws {
		if c := witnessRequestCounts(body)[w.addr+"/add-checkpoint"]; c["error"] != 0 || c["200"] == 0 {
			t.Errorf("all witnesses healthy, but provlog_witness_requests_total for %s is %v", w.name, c)
		}
	}

	// One witness killed: the other two still make the quorum.
	ws[0].kill()
	lat2 := appendPublished("two", 8)
	appendBatch("two-batch", 20, pb.WaitFor_WAIT_FOR_PUBLISHED)
	t.Logf("w1 killed: Append WAIT_FOR_PUBLISHED latency %s", latencies(lat2))

	// Two witnesses killed: fail closed.
	last := d.latestCheckpoint()
	if want := int64(len(acked)) + cp0.size; last.size != want {
		t.Fatalf("before the outage the published size is %d, want %d (every published-acknowledged event)", last.size, want)
	}
	ws[1].kill()
	outageStart := time.Now()
	monBefore := mon.count()

	pendingEv := newEvent("outage-published")
	start := time.Now()
	_, err = d.client().Append(d.ctx(), &pb.AppendRequest{Event: pendingEv, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	waited := time.Since(start)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Append WAIT_FOR_PUBLISHED without a quorum: %v after %v, want Unavailable", err, waited)
	}
	if waited < publishTimeout-100*time.Millisecond || waited > publishTimeout+2*time.Second {
		t.Fatalf("Append WAIT_FOR_PUBLISHED gave up after %v, want about --publish-timeout %v", waited, publishTimeout)
	}
	t.Logf("2 witnesses down: Append WAIT_FOR_PUBLISHED returned %v after %v: %v", status.Code(err), waited.Round(time.Millisecond), status.Convert(err).Message())
	m := regexp.MustCompile(`sequenced at index (\d+)`).FindStringSubmatch(status.Convert(err).Message())
	if m == nil {
		t.Fatalf("Unavailable message does not give the sequenced index: %v", err)
	}
	pendingIdx, _ := strconv.ParseUint(m[1], 10, 64)

	// Sequenced appends are still acknowledged.
	start = time.Now()
	seqBatch := appendBatch("outage-sequenced", 30, pb.WaitFor_WAIT_FOR_SEQUENCED)
	for range 5 {
		ev := newEvent("outage-unary")
		resp, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_SEQUENCED})
		if err != nil {
			t.Fatalf("Append WAIT_FOR_SEQUENCED without a quorum: %v", err)
		}
		record(resp.GetIndex(), resp.GetLeafHash(), ev)
	}
	if seqBatch.GetCheckpoint() != nil || seqBatch.GetResults()[0].GetReceipt() != nil {
		t.Fatal("WAIT_FOR_SEQUENCED batch came back with a checkpoint or receipt")
	}
	t.Logf("2 witnesses down: 30-event batch + 5 unary WAIT_FOR_SEQUENCED acknowledged in %v", time.Since(start).Round(time.Millisecond))
	// Nothing is published: watch for several checkpoint intervals and
	// witness timeouts after the last append.
	for watch := time.Now(); time.Since(watch) < 2*witnessTimeout; time.Sleep(100 * time.Millisecond) {
		if cp := d.latestCheckpoint(); cp.size != last.size || cp.root != last.root {
			t.Fatalf("checkpoint of size %d published %v into an outage of 2 of 3 witnesses (last before: %d)", cp.size, time.Since(outageStart), last.size)
		}
	}
	for _, raw := range mon.since(monBefore) {
		if cp := openCheckpoint(t, logV, raw); cp.size != last.size {
			t.Fatalf("monitor saw a checkpoint of size %d during the outage (last before: %d)", cp.size, last.size)
		}
	}
	var maxAcked uint64
	for idx := range acked {
		maxAcked = max(maxAcked, idx)
	}
	maxAcked = max(maxAcked, pendingIdx)
	t.Logf("outage of %v: published size stayed %d while %d events were sequenced (highest index %d)",
		time.Since(outageStart).Round(time.Millisecond), last.size, int64(maxAcked)+1-last.size, maxAcked)

	// The surviving witness was asked to cosign every checkpoint tessera
	// tried to publish; it holds one the log never published.
	if code, b := ws[2].get("/" + fmt.Sprintf("%x", sha256.Sum256([]byte(origin))) + "/checkpoint"); code == http.StatusOK {
		t.Logf("during the outage w3's latest cosigned checkpoint has size %d; the published one %d", openCheckpoint(t, logV, b).size, last.size)
	}

	// Witnesses back, on their old data dirs and ports. Nothing is appended
	// until the first new checkpoint is seen, so it is the first one
	// published after the outage.
	ws[0].start()
	ws[1].start()
	restored := time.Now()
	var next checkpoint
	var nextRaw []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		raw := mustGet(t, d, "/log/checkpoint")
		if cp := openCheckpoint(t, logV, raw); cp.size != last.size {
			next, nextRaw = cp, raw
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint published within 20s of restarting the witnesses\n%s", d.logs)
		}
	}
	_, cosigners = witnessed(nextRaw)
	t.Logf("witnesses restarted: publication resumed after %v with size %d cosigned by %v", time.Since(restored).Round(time.Millisecond), next.size, cosigners)
	if next.size < int64(maxAcked)+1 {
		t.Errorf("first checkpoint after the outage has size %d; it does not cover acknowledged index %d", next.size, maxAcked)
	}
	p, err := d.client().GetConsistencyProof(d.ctx(), &pb.GetConsistencyProofRequest{FromSize: uint64(last.size), ToSize: uint64(next.size)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(hashes(t, p.GetProof()), next.size, next.root, last.size, last.root); err != nil {
		t.Fatalf("checkpoint after the outage (%d) is inconsistent with the last before it (%d): %v", next.size, last.size, err)
	}

	// The event whose publication timed out was sequenced: re-sending it is
	// a duplicate at the same index, now with a cosigned receipt.
	resp, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: pendingEv, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	if err != nil {
		t.Fatalf("re-sending the event that timed out: %v", err)
	}
	if !resp.GetDuplicate() || resp.GetIndex() != pendingIdx {
		t.Fatalf("re-sent event: index %d duplicate %v, want duplicate at %d", resp.GetIndex(), resp.GetDuplicate(), pendingIdx)
	}
	checkReceipt(resp.GetReceipt(), pendingEv)
	record(pendingIdx, resp.GetLeafHash(), pendingEv)

	// Every acknowledged event, in the tiles and through GetEntry.
	latest := d.latestCheckpoint()
	entries := readWholeLog(t, d, latest)
	for idx, a := range acked {
		if h := tlog.RecordHash(entries[idx]); !bytes.Equal(h[:], a.leafHash) {
			t.Fatalf("acknowledged leaf %d (%s) lost or changed: hash %x, acknowledged %x", idx, a.event.GetEventId(), h, a.leafHash)
		}
	}
	for _, r := range seqBatch.GetResults() {
		e, err := d.client().GetEntry(d.ctx(), &pb.GetEntryRequest{Index: r.GetIndex()})
		if err != nil {
			t.Fatalf("GetEntry %d: %v", r.GetIndex(), err)
		}
		if !proto.Equal(e.GetEntry().GetEvent(), acked[r.GetIndex()].event) {
			t.Fatalf("GetEntry %d holds %s, acknowledged %s", r.GetIndex(), e.GetEntry().GetEvent().GetEventId(), acked[r.GetIndex()].event.GetEventId())
		}
	}
	latR := appendPublished("restored", 5)
	t.Logf("after the restart: Append WAIT_FOR_PUBLISHED latency %s", latencies(latR))

	// A hung witness (SIGSTOP) rather than a dead one: the other two answer,
	// so publication goes on; tessera returns as soon as the quorum is met.
	ws[2].signal(syscall.SIGSTOP)
	latHung := appendPublished("hung", 5)
	ws[2].signal(syscall.SIGCONT)
	t.Logf("w3 stopped (SIGSTOP): Append WAIT_FOR_PUBLISHED latency %s", latencies(latHung))

	// Two witnesses hung: every publication round waits --witness-timeout
	// and fails; appends waiting for publication get Unavailable.
	_, body = d.rest("GET", "/metrics", nil)
	before := witnessRequestCounts(body)
	ws[1].signal(syscall.SIGSTOP)
	ws[2].signal(syscall.SIGSTOP)
	hungEv := newEvent("two-hung")
	start = time.Now()
	_, err = d.client().Append(d.ctx(), &pb.AppendRequest{Event: hungEv, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	waited = time.Since(start)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Append WAIT_FOR_PUBLISHED with 2 of 3 witnesses hung: %v after %v, want Unavailable", err, waited)
	}
	_, body = d.rest("GET", "/metrics", nil)
	after := witnessRequestCounts(body)
	ws[1].signal(syscall.SIGCONT)
	ws[2].signal(syscall.SIGCONT)
	label := func(i int) string { return ws[i].addr + "/add-checkpoint" }
	t.Logf("w2, w3 stopped (SIGSTOP): Append WAIT_FOR_PUBLISHED returned %v after %v; in that time w2 got %v more failed requests, w1 %v more 200s",
		status.Code(err), waited.Round(time.Millisecond), after[label(1)]["error"]-before[label(1)]["error"], after[label(0)]["200"]-before[label(0)]["200"])
	start = time.Now()
	resp, err = d.client().Append(d.ctx(), &pb.AppendRequest{Event: hungEv, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	if err != nil || !resp.GetDuplicate() {
		t.Fatalf("re-sending the event after SIGCONT: %v (duplicate %v)", err, resp.GetDuplicate())
	}
	checkReceipt(resp.GetReceipt(), hungEv)
	record(resp.GetIndex(), resp.GetLeafHash(), hungEv)
	t.Logf("after SIGCONT the receipt came in %v", time.Since(start).Round(time.Millisecond))

	// Every checkpoint the monitor saw over the whole run: witnessed, and
	// each consistent with the one before.
	final := d.latestCheckpoint()
	seen := mon.stop()
	var prev *checkpoint
	for _, raw := range seen {
		cp, _ := witnessed(raw)
		if cp.size > final.size {
			t.Fatalf("monitor saw size %d beyond the final %d", cp.size, final.size)
		}
		if cp.size == 0 && cp.root != tlog.Hash(sha256.Sum256(nil)) {
			t.Fatalf("published empty tree with root %x, want SHA-256 of nothing", cp.root)
		}
		if prev != nil && prev.size > 0 {
			p, err := d.client().GetConsistencyProof(d.ctx(), &pb.GetConsistencyProofRequest{FromSize: uint64(prev.size), ToSize: uint64(cp.size)})
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(hashes(t, p.GetProof()), cp.size, cp.root, prev.size, prev.root); err != nil {
				t.Fatalf("published checkpoint %d inconsistent with the previous one %d: %v", cp.size, prev.size, err)
			}
		}
		prev = &cp
	}
	t.Logf("monitor saw %d distinct published checkpoints, all cosigned by >= 2 witnesses and consistent in order", len(seen))

	// Per-witness metrics on provlogd's /metrics (admin token).
	code, body := d.rest("GET", "/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	counts := witnessRequestCounts(body)
	for i, w := range ws {
		label := w.addr + "/add-checkpoint"
		if counts[label]["200"] == 0 {
			t.Errorf("provlog_witness_requests_total{witness=%q,result=\"200\"} missing or 0; got %v", label, counts)
		}
		if i < 2 && counts[label]["error"] == 0 {
			t.Errorf("provlog_witness_requests_total{witness=%q,result=\"error\"} missing or 0 for a killed witness; got %v", label, counts)
		}
		t.Logf("provlog_witness_requests_total %s: %v", w.name, counts[label])
	}
	d.stop()
	t.Logf("provlogd logged %d lines about publishCheckpoint (failed publication rounds)", strings.Count(d.logs.String(), "publishCheckpoint"))
	t.Logf("total %v", time.Since(testStart).Round(time.Millisecond))
}

// provwitnessBinary builds cmd/provwitness once per test binary.
func provwitnessBinary(t *testing.T) string { return testbin.Build(t, "cmd/provwitness") }

// witnessProc is one provwitness process; start can be called again after
// kill, on the same data dir and port.
type witnessProc struct {
	t        *testing.T
	bin      string
	name     string
	dataDir  string
	addr     string
	logArg   string
	vkey     string
	verifier note.Verifier
	proc     *testbin.Process
	logs     *testbin.Buffer
}

func startWitness(t *testing.T, bin, name, logArg string) *witnessProc {
	t.Helper()
	w := &witnessProc{t: t, bin: bin, name: name, dataDir: t.TempDir(), addr: freePort(t), logArg: logArg}
	w.start()
	t.Cleanup(w.kill)
	pub, err := os.ReadFile(filepath.Join(w.dataDir, "witness.pub"))
	if err != nil {
		t.Fatal(err)
	}
	w.vkey = strings.TrimSpace(string(pub))
	if w.verifier, err = fnote.NewVerifierForCosignatureV1(w.vkey); err != nil {
		t.Fatalf("%s: witness.pub: %v", name, err)
	}
	return w
}

func (w *witnessProc) start() {
	t := w.t
	t.Helper()
	w.proc = testbin.Start(t, w.bin, nil, "--data-dir", w.dataDir, "--addr", w.addr, "--log", w.logArg,
		"--name", w.name+".witness-e2e.example/provwitness")
	w.logs = w.proc.Logs
	w.proc.WaitHealthy(t, "http://"+w.addr+"/healthz", 20*time.Second)
}

// kill sends SIGKILL, if running.
func (w *witnessProc) kill() {
	if w.proc == nil {
		return
	}
	w.proc.Cmd.Process.Signal(syscall.SIGCONT) // in case it was stopped
	w.proc.Kill()
	w.proc = nil
}

func (w *witnessProc) get(path string) (int, []byte) {
	w.t.Helper()
	resp, err := http.Get("http://" + w.addr + path)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (w *witnessProc) signal(s syscall.Signal) {
	w.t.Helper()
	if err := w.proc.Cmd.Process.Signal(s); err != nil {
		w.t.Fatalf("signal %v to %s: %v", s, w.name, err)
	}
}

// checkpointMonitor polls /log/checkpoint and keeps every distinct
// checkpoint it sees, in order, for checking from the test goroutine.
type checkpointMonitor struct {
	mu   sync.Mutex
	seen [][]byte
	quit chan struct{}
	done chan struct{}
}

func startCheckpointMonitor(t *testing.T, d *daemon) *checkpointMonitor {
	m := &checkpointMonitor{quit: make(chan struct{}), done: make(chan struct{})}
	url := "http://" + d.httpAddr + "/log/checkpoint"
	go func() {
		defer close(m.done)
		for {
			select {
			case <-m.quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
			resp, err := http.Get(url)
			if err != nil {
				continue
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				continue
			}
			m.mu.Lock()
			if len(m.seen) == 0 || !bytes.Equal(m.seen[len(m.seen)-1], b) {
				m.seen = append(m.seen, b)
			}
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() { m.stop() })
	return m
}

func (m *checkpointMonitor) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seen)
}

func (m *checkpointMonitor) since(i int) [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seen[i:])
}

func (m *checkpointMonitor) stop() [][]byte {
	select {
	case <-m.quit:
	default:
		close(m.quit)
	}
	<-m.done
	return m.since(0)
}

func mustGet(t *testing.T, d *daemon, path string) []byte {
	t.Helper()
	code, b := d.get(path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	return b
}

// witnessRequestCounts reads provlog_witness_requests_total from a
// Prometheus text exposition: witness -> result -> count.
func witnessRequestCounts(metrics []byte) map[string]map[string]float64 {
	re := regexp.MustCompile(`^provlog_witness_requests_total\{(.*)\} (\S+)$`)
	label := regexp.MustCompile(`(\w+)="([^"]*)"`)
	out := map[string]map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(metrics))
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range label.FindAllStringSubmatch(m[1], -1) {
			labels[l[1]] = l[2]
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		if out[labels["witness"]] == nil {
			out[labels["witness"]] = map[string]float64{}
		}
		out[labels["witness"]][labels["result"]] += v
	}
	return out
}

// latencies summarises durations as min/median/max.
func latencies(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %v median %v max %v (n=%d)", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]), len(s))
}
