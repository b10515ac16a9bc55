package witness

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testStoreContract is the conformance suite every Store must pass.
func testStoreContract(t *testing.T, open func(t *testing.T) Store) {
	c1 := Cosigned{Origin: "o", Size: 1, Hash: []byte("h1"), Note: []byte("n1")}
	c2 := Cosigned{Origin: "o", Size: 2, Hash: []byte("h2"), Note: []byte("n2")}
	c2b := Cosigned{Origin: "o", Size: 2, Hash: []byte("h2"), Note: []byte("n2 again")}
	other := Cosigned{Origin: "p", Size: 7, Hash: []byte("h7"), Note: []byte("n7")}

	t.Run("latest of unknown origin", func(t *testing.T) {
		s := open(t)
		if _, err := s.Latest(t.Context(), "o"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Latest = %v, want ErrNotFound", err)
		}
	})
	t.Run("replace checks prev", func(t *testing.T) {
		s := open(t)
		steps := []struct {
			prev    *Cosigned
			next    Cosigned
			wantErr error
		}{
			{nil, c1, nil},
			{nil, c2, ErrStale},
			{&c2, c2, ErrStale},
			{&Cosigned{Size: 1, Hash: []byte("other")}, c2, ErrStale},
			{&c1, c2, nil},
			{&c2, c2b, nil}, // same size and root: the note may change
			{&c1, c2, ErrStale},
			{nil, other, nil},
		}
		for i, st := range steps {
			if err := s.Replace(t.Context(), st.prev, st.next); !errors.Is(err, st.wantErr) {
				t.Fatalf("step %d: Replace = %v, want %v", i, err, st.wantErr)
			}
		}
		for _, want := range []Cosigned{c2b, other} {
			got, err := s.Latest(t.Context(), want.Origin)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Latest(%q) (-want +got):\n%s", want.Origin, diff)
			}
		}
	})
	t.Run("evidence in order, per origin", func(t *testing.T) {
		s := open(t)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		var want []Evidence
		for i := range 3 {
			e := Evidence{
				Origin: "o", Time: now.Add(time.Duration(i) * time.Second), Kind: KindBadProof,
				Cosigned: []byte("held"), Submitted: []byte{byte(i)}, OldSize: uint64(i),
				Proof: [][]byte{{1, 2}, {3}}, Detail: "d",
			}
			if err := s.AddEvidence(t.Context(), e); err != nil {
				t.Fatal(err)
			}
			want = append(want, e)
		}
		if err := s.AddEvidence(t.Context(), Evidence{Origin: "p", Kind: KindRootMismatch}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Evidence(t.Context(), "o")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Evidence (-want +got):\n%s", diff)
		}
		if got, err := s.Evidence(t.Context(), "none"); err != nil || len(got) != 0 {
			t.Errorf("Evidence(none) = %v, %v; want nothing", got, err)
		}
	})
}

func TestBoltStore(t *testing.T) {
	testStoreContract(t, func(t *testing.T) Store {
		s, err := OpenBoltStore(filepath.Join(t.TempDir(), "w.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestBoltStoreDurability(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.db.NoSync {
		t.Fatal("bbolt NoSync is on: cosigned state would not be fsynced")
	}
	c := Cosigned{Origin: "o", Size: 3, Hash: []byte("h"), Note: []byte("n")}
	if err := s.Replace(t.Context(), nil, c); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBoltStore(path); err == nil {
		t.Error("a second OpenBoltStore on a store in use succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Latest(t.Context(), "o")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("after reopen (-want +got):\n%s", diff)
	}
}
