package server

import (
	"errors"
	"testing"
)

func TestRaiseFileLimit(t *testing.T) {
	refuse := errors.New("refused")
	cases := []struct {
		name    string
		start   fileLimit
		refuse  func(fileLimit) bool
		want    fileLimit
		wantErr bool
	}{
		{"raises to hard", fileLimit{1024, 524288}, nil, fileLimit{524288, 524288}, false},
		{"already at hard", fileLimit{4096, 4096}, nil, fileLimit{4096, 4096}, false},
		{"hard refused, fallback", fileLimit{256, 1 << 62}, func(l fileLimit) bool { return l.cur > fallbackFileLimit }, fileLimit{fallbackFileLimit, 1 << 62}, false},
		{"all refused", fileLimit{256, 1 << 62}, func(fileLimit) bool { return true }, fileLimit{256, 1 << 62}, true},
		{"fallback not higher", fileLimit{20000, 1 << 62}, func(l fileLimit) bool { return l.cur > 30000 }, fileLimit{20000, 1 << 62}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cur := c.start
			get := func() (fileLimit, error) { return cur, nil }
			set := func(l fileLimit) error {
				if l.max != cur.max {
					t.Fatalf("hard limit changed: %+v -> %+v", cur, l)
				}
				if c.refuse != nil && c.refuse(l) {
					return refuse
				}
				cur = l
				return nil
			}
			before, after, err := raiseFileLimit(get, set)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if before != c.start || after != c.want || cur != c.want {
				t.Fatalf("before %+v after %+v now %+v, want %+v -> %+v", before, after, cur, c.start, c.want)
			}
		})
	}
}

func TestRaiseFileLimitReal(t *testing.T) {
	before, err := getFileLimit()
	if err != nil {
		t.Skip(err)
	}
	_, after, err := raiseFileLimit(getFileLimit, setFileLimit)
	if err != nil {
		t.Fatal(err)
	}
	if after.cur < before.cur || after.max != before.max {
		t.Fatalf("limit went from %+v to %+v", before, after)
	}
	RaiseFileLimit(nil) // never panics without a logger
}

func TestOpenFilesBudget(t *testing.T) {
	for _, c := range []struct{ limit, conns, want int }{
		{20000, 0, 15000},      // a quarter left for sockets
		{20000, 10000, 9744},   // --max-connections reserved
		{1024, 0, 768},         //
		{256, 0, 128},          // at least half of it up to 256
		{100, 0, minOpenFiles}, // never below the minimum
		{1 << 20, 0, 786432},
	} {
		if got := budgetFor(c.limit, c.conns); got != c.want {
			t.Errorf("budgetFor(%d, %d) = %d, want %d", c.limit, c.conns, got, c.want)
		}
	}
	if got := openFilesBudget(42, 0, nil); got != 42 {
		t.Errorf("configured 42: %d", got)
	}
}
