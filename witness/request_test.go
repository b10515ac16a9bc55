package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	h1    = bytes.Repeat([]byte{1}, 32)
	h2    = bytes.Repeat([]byte{0xfe}, 32)
	b64h1 = base64.StdEncoding.EncodeToString(h1)
	b64h2 = base64.StdEncoding.EncodeToString(h2)
)

const exampleCheckpoint = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"

func TestParseAddCheckpoint(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    addRequest
		wantErr bool
	}{
		{"spec example shape", "old 20852014\n" + b64h1 + "\n" + b64h2 + "\n\n" + exampleCheckpoint,
			addRequest{OldSize: 20852014, Proof: [][]byte{h1, h2}, Checkpoint: []byte(exampleCheckpoint)}, false},
		{"old 0 no proof", "old 0\n\n" + exampleCheckpoint, addRequest{Checkpoint: []byte(exampleCheckpoint)}, false},
		{"max uint64", "old 18446744073709551615\n\nx", addRequest{OldSize: 1<<64 - 1, Checkpoint: []byte("x")}, false},
		{"63 proof lines", "old 1\n" + strings.Repeat(b64h1+"\n", 63) + "\nx",
			addRequest{OldSize: 1, Proof: slices63(h1), Checkpoint: []byte("x")}, false},
		{"64 proof lines", "old 1\n" + strings.Repeat(b64h1+"\n", 64) + "\nx", addRequest{}, true},
		{"empty", "", addRequest{}, true},
		{"no newline", "old 0", addRequest{}, true},
		{"wrong keyword", "OLD 0\n\nx", addRequest{}, true},
		{"leading zero", "old 01\n\nx", addRequest{}, true},
		{"plus sign", "old +1\n\nx", addRequest{}, true},
		{"trailing space", "old 1 \n\nx", addRequest{}, true},
		{"overflow", "old 18446744073709551616\n\nx", addRequest{}, true},
		{"no empty line", "old 0\n" + b64h1 + "\n", addRequest{}, true},
		{"no checkpoint", "old 0\n\n", addRequest{}, true},
		{"proof with CR", "old 0\n" + b64h1 + "\r\n\nx", addRequest{}, true},
		{"proof unpadded", "old 0\n" + strings.TrimRight(b64h1, "=") + "\n\nx", addRequest{}, true},
		{"proof non-canonical padding bits", "old 0\n" + b64h1[:42] + "B=\n\nx", addRequest{}, true},
		{"proof 31 bytes", "old 0\n" + base64.StdEncoding.EncodeToString(h1[:31]) + "\n\nx", addRequest{}, true},
		{"proof url-safe base64", "old 0\n" + base64.URLEncoding.EncodeToString(h2) + "\n\nx", addRequest{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAddCheckpoint([]byte(tc.body))
			if tc.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func slices63(h []byte) [][]byte {
	out := make([][]byte, 63)
	for i := range out {
		out[i] = h
	}
	return out
}

func TestParseCheckpoint(t *testing.T) {
	hash := base64.StdEncoding.EncodeToString(h1)
	tests := []struct {
		text    string
		want    checkpoint
		wantErr bool
	}{
		{"o\n5\n" + hash + "\n", checkpoint{"o", 5, h1}, false},
		{"o with space\n0\n" + hash + "\next\nmore\n", checkpoint{"o with space", 0, h1}, false},
		{"o\n5\n" + hash, checkpoint{}, true},
		{"o\n5\n", checkpoint{}, true},
		{"\n5\n" + hash + "\n", checkpoint{}, true},
		{"o\n05\n" + hash + "\n", checkpoint{}, true},
		{"o\n-5\n" + hash + "\n", checkpoint{}, true},
		{"o\n5\nAAAA\n", checkpoint{}, true},
		{"o\n5\n" + hash + "\n\n", checkpoint{}, true},
		{"o\n5\n" + hash + "\next\n\nmore\n", checkpoint{}, true},
	}
	for _, tc := range tests {
		got, err := parseCheckpoint(tc.text)
		if tc.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("parseCheckpoint(%q) err = %v, want error: %v", tc.text, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parseCheckpoint(%q) (-want +got):\n%s", tc.text, diff)
		}
	}
}

func FuzzParseAddCheckpoint(f *testing.F) {
	for _, seed := range []string{
		"old 20852014\n" + b64h1 + "\n" + b64h2 + "\n\n" + exampleCheckpoint,
		"old 0\n\n" + exampleCheckpoint,
		"old 0\n\n",
		"old 01\n\nx",
		"old 18446744073709551616\n\nx",
		"old 3\n" + b64h1 + "\r\n\nx",
		"old 1\n" + strings.Repeat(b64h1+"\n", 64) + "\nx",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseAddCheckpoint(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(req.Proof) > maxProofLines {
			t.Fatalf("accepted %d proof lines", len(req.Proof))
		}
		if len(req.Checkpoint) == 0 {
			t.Fatal("accepted an empty checkpoint")
		}
		// The format is canonical: what was accepted re-encodes to the body.
		var b bytes.Buffer
		fmt.Fprintf(&b, "old %d\n", req.OldSize)
		for _, h := range req.Proof {
			if len(h) != hashSize {
				t.Fatalf("accepted a %d-byte hash", len(h))
			}
			fmt.Fprintf(&b, "%s\n", base64.StdEncoding.EncodeToString(h))
		}
		b.WriteString("\n")
		b.Write(req.Checkpoint)
		if !bytes.Equal(b.Bytes(), body) {
			t.Fatalf("re-encoded %q, parsed from %q", b.Bytes(), body)
		}
	})
}
