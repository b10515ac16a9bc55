package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Defaults: what a provlogd started with no flags in the current directory
// listens on and writes.
const (
	DefaultGRPCAddr    = "127.0.0.1:8090"
	DefaultHTTPURL     = "http://127.0.0.1:8080"
	DefaultTokenFile   = "provlog-data/admin.token"
	DefaultLogKeyFile  = "provlog-data/log.pub"
	DefaultConfigFile  = "provctl.json" // under os.UserConfigDir()/provlog
	envAddr            = "PROVLOG_ADDR"
	envHTTP            = "PROVLOG_HTTP"
	envToken           = "PROVLOG_TOKEN"
	envLogKey          = "PROVLOG_LOG_KEY"
	envWitnessPolicy   = "PROVLOG_WITNESS_POLICY"
	envConfig          = "PROVLOG_CONFIG"
	envTLS             = "PROVLOG_TLS"
	maxConfigFileBytes = 1 << 20
)

// Settings is how to reach and whom to trust: the unresolved form, where a
// field left empty means "not set here". Token, LogKey and WitnessPolicy
// each take either the value itself or a file holding it (the *File
// fields); the value wins when both are set at the same level.
//
// In a config file the fields are JSON keys:
//
//	{"addr": "log.example:8090", "http": "https://log.example",
//	 "token_file": "/etc/provlog/token", "log_key_file": "/etc/provlog/log.pub",
//	 "witness_policy_file": "/etc/provlog/policy.txt"}
type Settings struct {
	// Addr is the gRPC address, host:port.
	Addr string `json:"addr,omitempty"`
	// HTTP is the base URL of the HTTP listener that serves /log/.
	HTTP              string `json:"http,omitempty"`
	Token             string `json:"token,omitempty"`
	TokenFile         string `json:"token_file,omitempty"`
	LogKey            string `json:"log_key,omitempty"`
	LogKeyFile        string `json:"log_key_file,omitempty"`
	WitnessPolicyFile string `json:"witness_policy_file,omitempty"`
	// TLS secures the gRPC connection with the system's roots.
	TLS bool `json:"tls,omitempty"`
}

// Config is a resolved Settings: values, no file names.
type Config struct {
	Addr  string
	HTTP  string
	Token string
	// LogKey is the log's note verifier key (one line of log.pub).
	LogKey string
	// WitnessPolicy is the policy text (ParsePolicy), empty for none.
	WitnessPolicy []byte
	// TLS asks for a TLS gRPC connection (system roots).
	TLS bool
	// Sources says where each field came from ("flag", "env", "config
	// file PATH", "default"), for error messages and provctl's output.
	Sources map[string]string
}

// Policy parses the configured log key and witness policy.
func (c Config) Policy() (*Policy, error) {
	if c.LogKey == "" {
		return nil, errors.New("no log key: set --log-key, PROVLOG_LOG_KEY, log_key_file in the config file, or run where provlog-data/log.pub exists")
	}
	p, err := ParsePolicy(c.LogKey, c.WitnessPolicy)
	if err != nil {
		return nil, fmt.Errorf("log key from %s: %w", c.Sources["log_key"], err)
	}
	return p, nil
}

// ResolveConfig merges settings, field by field, in this order: flags, then
// the environment (PROVLOG_ADDR, PROVLOG_HTTP, PROVLOG_TOKEN the token
// itself, PROVLOG_LOG_KEY a key or a file holding one,
// PROVLOG_WITNESS_POLICY a file, PROVLOG_TLS=1), then the config file (configPath, or PROVLOG_CONFIG, or
// provlog/provctl.json under the user config directory; a missing default
// file is not an error), then the local defaults: 127.0.0.1:8090,
// http://127.0.0.1:8080, and ./provlog-data/admin.token and log.pub when
// they exist. getenv is os.Getenv in production.
func ResolveConfig(flags Settings, configPath string, getenv func(string) string) (Config, error) {
	env := Settings{
		Addr:   getenv(envAddr),
		HTTP:   getenv(envHTTP),
		Token:  getenv(envToken),
		LogKey: getenv(envLogKey),
	}
	if p := getenv(envWitnessPolicy); p != "" {
		env.WitnessPolicyFile = p
	}
	// PROVLOG_LOG_KEY is a key or a file holding one.
	if env.LogKey != "" {
		if _, err := os.Stat(env.LogKey); err == nil {
			env.LogKey, env.LogKeyFile = "", env.LogKey
		}
	}
	file := Settings{}
	fileSrc := ""
	explicit := configPath != ""
	if !explicit {
		configPath = getenv(envConfig)
		explicit = configPath != ""
	}
	if !explicit {
		if dir, err := os.UserConfigDir(); err == nil {
			configPath = filepath.Join(dir, "provlog", DefaultConfigFile)
		}
	}
	if configPath != "" {
		b, err := readSmall(configPath)
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &file); err != nil {
				return Config{}, fmt.Errorf("config file %s: %w", configPath, err)
			}
			fileSrc = "config file " + configPath
			// Relative file names in a config file are relative to it.
			rel := func(p *string) {
				if *p != "" && !filepath.IsAbs(*p) {
					*p = filepath.Join(filepath.Dir(configPath), *p)
				}
			}
			rel(&file.TokenFile)
			rel(&file.LogKeyFile)
			rel(&file.WitnessPolicyFile)
		case errors.Is(err, fs.ErrNotExist) && !explicit:
		default:
			return Config{}, fmt.Errorf("config file: %w", err)
		}
	}
	def := Settings{Addr: DefaultGRPCAddr, HTTP: DefaultHTTPURL}
	if _, err := os.Stat(DefaultTokenFile); err == nil {
		def.TokenFile = DefaultTokenFile
	}
	if _, err := os.Stat(DefaultLogKeyFile); err == nil {
		def.LogKeyFile = DefaultLogKeyFile
	}
	levels := []struct {
		s   Settings
		src string
	}{{flags, "flag"}, {env, "env"}, {file, fileSrc}, {def, "default"}}

	cfg := Config{Sources: map[string]string{}}
	// pick returns the first level that sets the value or the file.
	pick := func(name string, value func(Settings) string, path func(Settings) string) (string, error) {
		for _, l := range levels {
			if v := value(l.s); v != "" {
				cfg.Sources[name] = l.src
				return v, nil
			}
			if path == nil {
				continue
			}
			if p := path(l.s); p != "" {
				b, err := readSmall(p)
				if err != nil {
					return "", fmt.Errorf("%s (from %s): %w", name, l.src, err)
				}
				cfg.Sources[name] = l.src + " (" + p + ")"
				return string(b), nil
			}
		}
		return "", nil
	}
	var err error
	if cfg.Addr, err = pick("addr", func(s Settings) string { return s.Addr }, nil); err != nil {
		return Config{}, err
	}
	if cfg.HTTP, err = pick("http", func(s Settings) string { return s.HTTP }, nil); err != nil {
		return Config{}, err
	}
	if cfg.Token, err = pick("token", func(s Settings) string { return s.Token }, func(s Settings) string { return s.TokenFile }); err != nil {
		return Config{}, err
	}
	if cfg.LogKey, err = pick("log_key", func(s Settings) string { return s.LogKey }, func(s Settings) string { return s.LogKeyFile }); err != nil {
		return Config{}, err
	}
	wp, err := pick("witness_policy", func(Settings) string { return "" }, func(s Settings) string { return s.WitnessPolicyFile })
	if err != nil {
		return Config{}, err
	}
	cfg.Token, cfg.LogKey = strings.TrimSpace(cfg.Token), strings.TrimSpace(cfg.LogKey)
	cfg.TLS = flags.TLS || getenv(envTLS) == "1" || getenv(envTLS) == "true" || file.TLS
	if wp != "" {
		cfg.WitnessPolicy = []byte(wp)
	}
	if !strings.Contains(cfg.HTTP, "://") {
		cfg.HTTP = "http://" + cfg.HTTP
	}
	cfg.HTTP = strings.TrimRight(cfg.HTTP, "/")
	return cfg, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxConfigFileBytes)
	}
	return b, nil
}
