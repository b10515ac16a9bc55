package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/provlog/provlog/client"
	"github.com/transparency-dev/formats/log"
)

func cmdMonitor(e *env, args []string) int {
	f := newFlags(e, "monitor", "[--state FILE] [--once] [--interval D] [flags]",
		"Follows the log's /log/checkpoint: verifies each new checkpoint against the\nlog key and witness policy and, with a consistency proof, against the last\nverified one, kept in --state across runs; compares with what each policy\nwitness that has a URL reports (GET URL/<sha256(origin)>/checkpoint). On an\ninconsistency it prints an alert with both checkpoints as evidence and exits\n1. --once polls once, for cron. -o json prints one JSON object per line.", "text", "json")
	f.connFlags()
	state := f.String("state", "provctl-monitor.checkpoint", "file keeping the last verified checkpoint")
	once := f.Bool("once", false, "poll once and exit")
	interval := f.Duration("interval", 10*time.Second, "time between polls")
	witnesses := f.Bool("witnesses", true, "compare with the witnesses' checkpoints")
	if code, ok := f.parse(args, 0, 0); !ok {
		return code
	}
	c, err := f.dial(client.Options{})
	if err != nil {
		return f.fail(err)
	}
	defer c.Close()
	m := &client.Monitor{Client: c, StateFile: *state, CompareWitnesses: *witnesses, Interval: *interval}
	printed := false
	m.OnCheckpoint = func(cp *log.Checkpoint, raw []byte) {
		prev, _ := m.Last()
		printed = true
		if f.json() {
			writeNDJSON(e, map[string]any{"event": "checkpoint", "origin": cp.Origin, "size": cp.Size, "root_hash": fmt.Sprintf("%x", cp.Hash), "checkpoint": string(raw)})
		} else if prev == nil {
			fmt.Fprintf(e.stdout, "checkpoint of %s: size %d, root %x: verified\n", cp.Origin, cp.Size, cp.Hash)
		} else {
			fmt.Fprintf(e.stdout, "checkpoint of %s: size %d, root %x: verified, consistent with size %d\n", cp.Origin, cp.Size, cp.Hash, prev.Size)
		}
	}
	report := func(as []client.Alert) int {
		for _, a := range as {
			if f.json() {
				writeNDJSON(e, map[string]any{"event": "alert", "alert": a})
				continue
			}
			fmt.Fprintf(e.stdout, "ALERT %s (%s): %s\n--- old checkpoint\n%s--- new checkpoint\n%s", a.Kind, a.Source, a.Message, a.Old, a.New)
		}
		return exitFailed
	}
	if *once {
		as, err := m.Once(e.ctx)
		if len(as) > 0 {
			return report(as)
		}
		if err != nil {
			return f.fail(err)
		}
		if cp, _ := m.Last(); cp != nil && !printed && !f.json() {
			fmt.Fprintf(e.stdout, "checkpoint of %s: size %d, root %x: verified, no change\n", cp.Origin, cp.Size, cp.Hash)
		}
		return exitVerified
	}
	err = m.Run(e.ctx, func(err error) { fmt.Fprintln(e.stderr, "provctl monitor:", err) })
	var a client.Alert
	if errors.As(err, &a) {
		return report([]client.Alert{a})
	}
	if err != nil {
		return f.fail(err)
	}
	return exitVerified
}

func writeNDJSON(e *env, v any) {
	b, _ := json.Marshal(v)
	e.stdout.Write(append(b, '\n'))
}
