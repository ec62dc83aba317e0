package server

import (
	"path"
	"strings"
	"testing"
)

// FuzzPlainPath checks the shortcut front takes: a path plainPath accepts
// that does not end in "/" is one path.Clean leaves unchanged, so skipping
// Clean for it refuses nothing that Clean would.
func FuzzPlainPath(f *testing.F) {
	for _, p := range []string{"/", "/v1/instances/a/routes/telegram:bot_1:chat_1", "//x", "/a/../b", "/a/./b", "/a/.", "/a/..",
		"/a.:..b:.c.", "/a/", "", ".", "a/b", "/.hidden", "/a//", "*"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if plainPath(p) && !strings.HasSuffix(p, "/") && path.Clean(p) != p {
			t.Fatalf("plainPath(%q) but path.Clean gives %q", p, path.Clean(p))
		}
	})
}
