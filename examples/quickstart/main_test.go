package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestQuickstart(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`09:01 +telegram:support_bot:chat_100:topic_7 +-100100 +partition_fallback thread_scope_miss`),
		regexp.MustCompile(`09:03 +telegram:support_bot:chat_100 +-100999 +state_hit`),
		regexp.MustCompile(`09:30 +slack:T024BE7LD:C01:1764234000.000100 +C01/1764234000.000100 +provided_fallback +stale`),
		regexp.MustCompile(`over capacity: evicted`),
		regexp.MustCompile(`partition 0: 3/3 entries \(memory\)`),
		regexp.MustCompile(`heartbeat refused: .*superseded: priority 0 is below priority 10`),
		regexp.MustCompile(`reply "your order shipped" to dm-42 \(state_hit, origin set, revision 2, confirmed`),
		regexp.MustCompile(`reply "anything else\?" to dm-42 failed: 403`),
		regexp.MustCompile(`reply "we moved your ticket" to support-group \(provided_fallback`),
	} {
		if !want.MatchString(s) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "\n") < 20 {
		t.Errorf("output is short:\n%s", s)
	}
}
