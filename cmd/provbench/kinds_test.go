package main

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/provlog/provlog/log/authorship"
	"github.com/provlog/provlog/log/event"
)

// TestKindGenerators: signed events verify under the key (with the key
// history the log uses), sensitive ones carry 3 values and are valid as
// submitted, their leaves hold only commitments, and padding brings every
// kind's leaves to the size asked (or as small as the kind allows).
func TestKindGenerators(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := authorship.NewKeyHistory()
	if err := keys.Register(benchTenant, "provbench-test", pub, time.Now().Add(-time.Minute), 0); err != nil {
		t.Fatalf("registering the key in a key history: %v", err)
	}
	for _, kind := range []eventKind{
		{name: kindPlain},
		{name: kindSigned, keyID: "provbench-test", key: priv},
		{name: kindSensitive},
	} {
		for _, size := range []int{minEventSize, 4096} {
			g, err := newKindGenerator(size, kind)
			if err != nil {
				t.Fatalf("%s, %d: %v", kind.name, size, err)
			}
			for range 2 * len(shapeCycle) {
				e := g.next()
				if err := event.Validate(e, time.Now()); err != nil {
					t.Fatalf("%s: event %s fails validation: %v", kind.name, e.GetEventId(), err)
				}
				switch kind.name {
				case kindSigned:
					if err := keys.Verify(e); err != nil {
						t.Fatalf("signed event %s does not verify: %v", e.GetEventId(), err)
					}
				case kindSensitive:
					if n := len(e.GetSensitive()); n != 3 {
						t.Fatalf("sensitive event with %d values, want 3", n)
					}
					sealed := sealedCopy(e)
					if err := event.ValidateSealed(sealed, time.Now()); err != nil {
						t.Fatalf("sealed copy of %s is not a valid leaf event: %v", e.GetEventId(), err)
					}
					if e.GetSensitive()[0].GetValue() == "" {
						t.Fatal("sealedCopy changed the submitted event")
					}
				default:
					if e.GetSignature() != nil || len(e.GetSensitive()) != 0 {
						t.Fatalf("plain event %s carries a signature or sensitive values", e.GetEventId())
					}
				}
				leaf, err := g.leaf(e)
				if err != nil {
					t.Fatalf("%s: leaf: %v", kind.name, err)
				}
				// The smallest size is below what a signature or three
				// sealed values need: those leaves are bigger, unpadded.
				slack := 8
				if size == minEventSize {
					slack = 200
				}
				if d := len(leaf) - size; d < -8 || d > slack {
					t.Errorf("%s, size %d: leaf is %d bytes", kind.name, size, len(leaf))
				}
			}
		}
	}
}
