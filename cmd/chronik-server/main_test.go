package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/server"
)

func runCmd(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		code       int
		stdout     []string // substrings
		stderr     []string
		quietOut   bool // nothing on stdout
		quietError bool // nothing on stderr
	}{
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"chronik-server " + server.Version}, quietError: true},
		{name: "version after flags", args: []string{"-d", "/tmp/x", "version"}, code: 0, stdout: []string{server.Version}, quietError: true},
		{name: "config", args: []string{"config"}, code: 0, stdout: []string{"--data-dir", "CHRONIK_DATA_DIR", `"./data"`, "--kafka-port", `"9092"`}, quietError: true},
		{name: "config shows effective values", args: []string{"config", "--kafka-port", "1234"}, env: map[string]string{"CHRONIK_PRODUCE_PROFILE": "extreme"},
			code: 0, stdout: []string{`"1234"`, `"extreme"`, `default "9092"`, `default "high-throughput"`}, quietError: true},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: []string{"Usage:", "start", "--advertise, --advertised-addr", "CHRONIK_ADVERTISED_ADDR", "-d", "--config FILE"}, quietError: true},
		{name: "-h", args: []string{"-h"}, code: 0, stdout: []string{"Usage:"}, quietError: true},
		{name: "help command", args: []string{"help"}, code: 0, stdout: []string{"Usage:"}, quietError: true},
		{name: "no command", args: nil, code: 2, stdout: []string{"Usage:"}},
		{name: "unknown command", args: []string{"serve"}, code: 2, stderr: []string{`unknown command "serve"`, "start"}, quietOut: true},
		{name: "invalid flag value", args: []string{"start", "--kafka-port", "abc"}, code: 2, stderr: []string{"kafka-port", `"abc"`, "--help"}, quietOut: true},
		{name: "out of range flag", args: []string{"start", "--kafka-port", "70000"}, code: 2, stderr: []string{"kafka-port", "70000"}, quietOut: true},
		{name: "invalid env value", args: []string{"start"}, env: map[string]string{"CHRONIK_PRODUCE_PROFILE": "warp"}, code: 2,
			stderr: []string{"CHRONIK_PRODUCE_PROFILE", "warp", "high-throughput"}, quietOut: true},
		{name: "unknown flag", args: []string{"start", "--no-such-flag"}, code: 2, stderr: []string{"no-such-flag"}, quietOut: true},
		{name: "extra argument", args: []string{"start", "extra"}, code: 2, stderr: []string{`unexpected argument "extra"`}, quietOut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd(t, tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errs)
				}
			}
			if tt.quietOut && out != "" {
				t.Errorf("unexpected stdout:\n%s", out)
			}
			if tt.quietError && errs != "" {
				t.Errorf("unexpected stderr:\n%s", errs)
			}
		})
	}
}

// TestHelpListsEverySetting: --help documents every flag, alias and env var.
func TestHelpListsEverySetting(t *testing.T) {
	_, out, _ := runCmd(t, nil, "--help")
	for _, s := range config.Settings() {
		for _, f := range s.Flags {
			name := "--" + f
			if len(f) == 1 {
				name = "-" + f
			}
			if !strings.Contains(out, name) {
				t.Errorf("--help lacks %s", name)
			}
		}
		for _, e := range s.Envs {
			if !strings.Contains(out, e) {
				t.Errorf("--help lacks %s", e)
			}
		}
	}
	if strings.Contains(out, "--d,") || strings.Contains(out, "--d ") {
		t.Error("--help shows the short flag as --d")
	}
}

// TestConfigListsEverySetting: `config` prints one line per setting.
func TestConfigListsEverySetting(t *testing.T) {
	code, out, _ := runCmd(t, nil, "config")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(config.Settings()) {
		t.Errorf("config printed %d lines for %d settings", len(lines), len(config.Settings()))
	}
}
