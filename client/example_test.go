package client_test

import (
	"context"
	"fmt"
	"os"

	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// A workflow engine appends an event and gets a verified receipt; an
// auditor later checks an evidence bundle offline.
func Example() {
	ctx := context.Background()
	// Flags > PROVLOG_* > config file > ./provlog-data defaults.
	cfg, err := client.ResolveConfig(client.Settings{}, "", os.Getenv)
	if err != nil {
		panic(err)
	}
	policy, err := cfg.Policy() // the log key and the witness quorum
	if err != nil {
		panic(err)
	}
	c, err := client.New(cfg, policy, client.Options{})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	ev := &pb.ProvenanceEvent{ /* ... */ }
	// Pushback is retried: an append is idempotent. The receipt is
	// verified against the policy before Append returns.
	resp, err := c.Append(ctx, ev, pb.WaitFor_WAIT_FOR_PUBLISHED)
	if err != nil {
		panic(err)
	}
	fmt.Println("leaf", resp.GetIndex())

	// Offline, with nothing but the policy.
	raw, _ := os.ReadFile("run.bundle.json")
	vb, err := client.VerifyBundle(raw, policy)
	if err != nil {
		panic(err) // errors.Is(err, client.ErrVerification): the evidence is bad
	}
	fmt.Println(len(vb.Entries), "leaves proven into the checkpoint of size", vb.Checkpoint.Size)
}
