package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/provlog/provlog/client"
	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
)

func cmdAppend(e *env, args []string) int {
	f := newFlags(e, "append", "[flags] EVENT.json|EVENTS.ndjson|-",
		"Appends one event (a JSON ProvenanceEvent) or, with --ndjson (implied by a\n.ndjson or .jsonl file name), one event per line in batches, with progress\non stderr and a summary. Pushback is retried with backoff: appends are\nidempotent, so an event sent twice is logged once (\"duplicate\"). With\n--wait published every receipt is verified against the log key and policy.\nExit 2 when an event is refused.", "text", "json")
	f.connFlags()
	ndjson := f.Bool("ndjson", false, "the input holds one event per line")
	batch := f.Int("batch", 500, "events per AppendBatch call with --ndjson (1..1000)")
	wait := f.String("wait", "", "sequenced or published (default: published for one event, sequenced for --ndjson)")
	receiptOut := f.String("receipt", "", "write the Append response (with its receipt) to this file, for provctl verify receipt")
	signKey := f.String("sign-key", "", "sign each event with this submitter key (a note signer key from provctl keys generate submitter)")
	if code, ok := f.parse(args, 1, 1); !ok {
		return code
	}
	name := f.Arg(0)
	if strings.HasSuffix(name, ".ndjson") || strings.HasSuffix(name, ".jsonl") {
		*ndjson = true
	}
	w := pb.WaitFor_WAIT_FOR_PUBLISHED
	switch {
	case *wait == "" && *ndjson, *wait == "sequenced":
		w = pb.WaitFor_WAIT_FOR_SEQUENCED
	case *wait == "" || *wait == "published":
	default:
		fmt.Fprintf(e.stderr, "provctl: --wait %q: want sequenced or published\n", *wait)
		return exitUsage
	}
	if *batch < 1 || *batch > event.MaxBatch {
		fmt.Fprintf(e.stderr, "provctl: --batch %d: want 1..%d\n", *batch, event.MaxBatch)
		return exitUsage
	}
	var signer *submitterSigner
	if *signKey != "" {
		s, err := loadSubmitterKey(*signKey)
		if err != nil {
			return f.fail(err)
		}
		signer = s
	}
	c, err := f.dial(client.Options{})
	if err != nil {
		return f.fail(err)
	}
	defer c.Close()
	if *ndjson {
		return appendNDJSON(f, c, name, *batch, w, signer)
	}
	b, err := readInput(e, name, maxInput)
	if err != nil {
		return f.fail(err)
	}
	ev := &pb.ProvenanceEvent{}
	if err := protojson.Unmarshal(b, ev); err != nil {
		return f.fail(fmt.Errorf("%s: %w", name, err))
	}
	if signer != nil {
		if err := signer.sign(ev); err != nil {
			return f.fail(err)
		}
	}
	resp, err := c.Append(e.ctx, ev, w)
	if err != nil {
		return f.fail(err)
	}
	if *receiptOut != "" {
		out, _ := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
		if err := os.WriteFile(*receiptOut, append(out, '\n'), 0o644); err != nil {
			return f.fail(err)
		}
	}
	if f.json() {
		e.stdout.Write(append(protoJSON(resp), '\n'))
		return exitVerified
	}
	dup := ""
	if resp.GetDuplicate() {
		dup = " (duplicate: already in the log)"
	}
	fmt.Fprintf(e.stdout, "appended: event %q is leaf %d%s\n", ev.GetEventId(), resp.GetIndex(), dup)
	if r := resp.GetReceipt(); r != nil {
		fmt.Fprintf(e.stdout, "receipt verified: inclusion proof to a checkpoint satisfying the policy\n")
	}
	return exitVerified
}

type appendSummary struct {
	Events     int           `json:"events"`
	New        int           `json:"appended"`
	Duplicates int           `json:"duplicates"`
	Refused    []refusal     `json:"refused,omitempty"`
	Seconds    float64       `json:"seconds"`
	Checkpoint string        `json:"checkpoint,omitempty"`
	elapsed    time.Duration `json:"-"`
}

type refusal struct {
	Line    int    `json:"line"`
	EventID string `json:"event_id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func appendNDJSON(f *cmdFlags, c *client.Client, name string, batchSize int, wait pb.WaitFor, signer *submitterSigner) int {
	e := f.e
	var r io.Reader = e.stdin
	var total int64
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return f.fail(err)
		}
		defer file.Close()
		if fi, err := file.Stat(); err == nil {
			total = fi.Size()
		}
		r = file
	}
	cr := &countingReader{r: r}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	prog := newProgress(e.stderr, "append", "events", 0)
	prog.bytesTotal = total
	var sum appendSummary
	start := time.Now()
	var evs []*pb.ProvenanceEvent
	var lines []int
	flush := func() error {
		if len(evs) == 0 {
			return nil
		}
		resp, err := c.AppendBatch(e.ctx, evs, wait)
		if err != nil {
			return err
		}
		for i, res := range resp.GetResults() {
			switch {
			case res.GetError() != nil:
				sum.Refused = append(sum.Refused, refusal{Line: lines[i], EventID: evs[i].GetEventId(), Code: codes.Code(res.GetError().GetCode()).String(),
					Message: res.GetError().GetMessage(), Field: res.GetError().GetField()})
			case res.GetDuplicate():
				sum.Duplicates++
			default:
				sum.New++
			}
		}
		if len(resp.GetCheckpoint()) > 0 {
			sum.Checkpoint = string(resp.GetCheckpoint())
		}
		sum.Events += len(evs)
		prog.bytesDone = cr.n
		prog.update(uint64(sum.Events))
		evs, lines = evs[:0], lines[:0]
		return nil
	}
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		ev := &pb.ProvenanceEvent{}
		if err := protojson.Unmarshal(line, ev); err != nil {
			sum.Refused = append(sum.Refused, refusal{Line: lineNo, Code: "InvalidArgument", Message: "not a JSON event: " + err.Error()})
			sum.Events++
			continue
		}
		if signer != nil {
			if err := signer.sign(ev); err != nil {
				return f.fail(err)
			}
		}
		evs, lines = append(evs, ev), append(lines, lineNo)
		if len(evs) == batchSize {
			if err := flush(); err != nil {
				prog.done()
				return f.fail(err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		prog.done()
		return f.fail(fmt.Errorf("reading %s: %w", name, err))
	}
	if err := flush(); err != nil {
		prog.done()
		return f.fail(err)
	}
	prog.done()
	sum.elapsed = time.Since(start)
	sum.Seconds = sum.elapsed.Seconds()
	code := exitVerified
	if len(sum.Refused) > 0 {
		code = exitUsage
	}
	if f.json() {
		writeJSON(e.stdout, sum)
		return code
	}
	rate := float64(sum.Events) / max(sum.Seconds, 1e-9)
	fmt.Fprintf(e.stdout, "%d events: %d appended, %d duplicates, %d refused (%.1fs, %.0f events/s)\n",
		sum.Events, sum.New, sum.Duplicates, len(sum.Refused), sum.Seconds, rate)
	for i, rf := range sum.Refused {
		if i == 20 {
			fmt.Fprintf(e.stdout, "  ... and %d more (use -o json for all)\n", len(sum.Refused)-20)
			break
		}
		field := ""
		if rf.Field != "" {
			field = " [" + rf.Field + "]"
		}
		fmt.Fprintf(e.stdout, "  line %d %q: %s: %s%s\n", rf.Line, rf.EventID, rf.Code, rf.Message, field)
	}
	return code
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// submitterSigner signs events as a submitter: Ed25519 over
// event.SigningPayload, key id the key's name.
type submitterSigner struct {
	keyID string
	key   ed25519.PrivateKey
}

// loadSubmitterKey reads a note signer key "PRIVATE+KEY+NAME+HASH+BASE64"
// of type 0x01 (Ed25519).
func loadSubmitterKey(path string) (*submitterSigner, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	parts := strings.SplitN(strings.TrimSpace(string(b)), "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return nil, fmt.Errorf("%s: not a note signer key", path)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 0x01 {
		return nil, fmt.Errorf("%s: not an Ed25519 note signer key", path)
	}
	return &submitterSigner{keyID: parts[2], key: ed25519.NewKeyFromSeed(raw[1:])}, nil
}

func (s *submitterSigner) sign(ev *pb.ProvenanceEvent) error {
	ev.Signature = nil
	msg, err := event.SigningPayload(ev)
	if err != nil {
		return fmt.Errorf("event %q: %w", ev.GetEventId(), err)
	}
	ev.Signature = &pb.SubmitterSignature{KeyId: s.keyID, Signature: ed25519.Sign(s.key, msg)}
	return nil
}
