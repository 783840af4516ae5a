// The parts of the docker CLI's (API 1.49) container inspect types whose
// shape a template can see: a field the engine's JSON leaves out is the
// zero value of its Go type (as json.Unmarshal leaves it), a field it
// does not know is dropped, and a struct prints its fields in this order.
// Read by berth_template::docker with schema::Schema; never compiled.
// Written from the Engine API's documented fields; time.Duration prints
// as Go prints it (`1m30s`, its JSON a number of nanoseconds), time.Time
// and os.FileMode are kept as their underlying strings/numbers.
// Field names are Go's (`DNS`, `CPUShares`): a template naming the JSON
// key instead fails here and falls back to the raw JSON, as in Docker.
package types

type types.ContainerState struct {
	Status     string
	Running    bool
	Paused     bool
	Restarting bool
	OOMKilled  bool
	Dead       bool
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  string
	FinishedAt string
	Health     *types.Health `json:",omitempty"`
}

type types.Health struct {
	Status        string
	FailingStreak int
	Log           []*types.HealthcheckResult
}

type types.HealthcheckResult struct {
	Start    string
	End      string
	ExitCode int
	Output   string
}

type container.Config struct {
	Hostname        string
	Domainname      string
	User            string
	AttachStdin     bool
	AttachStdout    bool
	AttachStderr    bool
	ExposedPorts    map[nat.Port]struct{} `json:",omitempty"`
	Tty             bool
	OpenStdin       bool
	StdinOnce       bool
	Env             []string
	Cmd             []string
	Healthcheck     *container.HealthConfig `json:",omitempty"`
	ArgsEscaped     bool                    `json:",omitempty"`
	Image           string
	Volumes         map[string]struct{}
	WorkingDir      string
	Entrypoint      []string
	NetworkDisabled bool   `json:",omitempty"`
	MacAddress      string `json:",omitempty"`
	OnBuild         []string
	Labels          map[string]string
	StopSignal      string   `json:",omitempty"`
	StopTimeout     *int     `json:",omitempty"`
	Shell           []string `json:",omitempty"`
}

type nat.Port string

type container.HealthConfig struct {
	Test          []string      `json:",omitempty"`
	Interval      time.Duration `json:",omitempty"`
	Timeout       time.Duration `json:",omitempty"`
	StartPeriod   time.Duration `json:",omitempty"`
	StartInterval time.Duration `json:",omitempty"`
	Retries       int           `json:",omitempty"`
}

type container.HostConfig struct {
	Binds           []string
	ContainerIDFile string
	LogConfig       container.LogConfig
	NetworkMode     string
	PortBindings    map[nat.Port][]nat.PortBinding
	RestartPolicy   container.RestartPolicy
	AutoRemove      bool
	VolumeDriver    string
	VolumesFrom     []string
	ConsoleSize     []uint
	Annotations     map[string]string `json:",omitempty"`
	CapAdd          []string
	CapDrop         []string
	CgroupnsMode    string
	DNS             []string `json:"Dns"`
	DNSOptions      []string `json:"DnsOptions"`
	DNSSearch       []string `json:"DnsSearch"`
	ExtraHosts      []string
	GroupAdd        []string
	IpcMode         string
	Cgroup          string
	Links           []string
	OomScoreAdj     int
	PidMode         string
	Privileged      bool
	PublishAllPorts bool
	ReadonlyRootfs  bool
	SecurityOpt     []string
	StorageOpt      map[string]string `json:",omitempty"`
	Tmpfs           map[string]string `json:",omitempty"`
	UTSMode         string
	UsernsMode      string
	ShmSize         int64
	Sysctls         map[string]string `json:",omitempty"`
	Runtime         string            `json:",omitempty"`
	Isolation       string
	container.Resources
	Mounts        []mount.Mount `json:",omitempty"`
	MaskedPaths   []string
	ReadonlyPaths []string
	Init          *bool `json:",omitempty"`
}

type container.Resources struct {
	CPUShares            int64 `json:"CpuShares"`
	Memory               int64
	NanoCPUs             int64 `json:"NanoCpus"`
	CgroupParent         string
	BlkioWeight          uint16
	BlkioWeightDevice    []*blkiodev.WeightDevice
	BlkioDeviceReadBps   []*blkiodev.ThrottleDevice
	BlkioDeviceWriteBps  []*blkiodev.ThrottleDevice
	BlkioDeviceReadIOps  []*blkiodev.ThrottleDevice
	BlkioDeviceWriteIOps []*blkiodev.ThrottleDevice
	CPUPeriod            int64 `json:"CpuPeriod"`
	CPUQuota             int64 `json:"CpuQuota"`
	CPURealtimePeriod    int64 `json:"CpuRealtimePeriod"`
	CPURealtimeRuntime   int64 `json:"CpuRealtimeRuntime"`
	CpusetCpus           string
	CpusetMems           string
	Devices              []container.DeviceMapping
	DeviceCgroupRules    []string
	DeviceRequests       []container.DeviceRequest
	KernelMemory         int64 `json:",omitempty"`
	KernelMemoryTCP      int64 `json:",omitempty"`
	MemoryReservation    int64
	MemorySwap           int64
	MemorySwappiness     *int64
	OomKillDisable       *bool
	PidsLimit            *int64
	Ulimits              []*units.Ulimit
	CPUCount             int64 `json:"CpuCount"`
	CPUPercent           int64 `json:"CpuPercent"`
	IOMaximumIOps        uint64
	IOMaximumBandwidth   uint64
}

type container.LogConfig struct {
	Type   string
	Config map[string]string
}

type container.RestartPolicy struct {
	Name              string
	MaximumRetryCount int
}

type nat.PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}

type blkiodev.WeightDevice struct {
	Path   string
	Weight uint16
}

type blkiodev.ThrottleDevice struct {
	Path string
	Rate uint64
}

type container.DeviceMapping struct {
	PathOnHost        string
	PathInContainer   string
	CgroupPermissions string
}

type container.DeviceRequest struct {
	Driver       string
	Count        int
	DeviceIDs    []string
	Capabilities [][]string
	Options      map[string]string
}

type units.Ulimit struct {
	Name string
	Hard int64
	Soft int64
}

type mount.Mount struct {
	Type           string                `json:",omitempty"`
	Source         string                `json:",omitempty"`
	Target         string                `json:",omitempty"`
	ReadOnly       bool                  `json:",omitempty"`
	Consistency    string                `json:",omitempty"`
	BindOptions    *mount.BindOptions    `json:",omitempty"`
	VolumeOptions  *mount.VolumeOptions  `json:",omitempty"`
	ImageOptions   *mount.ImageOptions   `json:",omitempty"`
	TmpfsOptions   *mount.TmpfsOptions   `json:",omitempty"`
	ClusterOptions *mount.ClusterOptions `json:",omitempty"`
}

type mount.BindOptions struct {
	Propagation            string `json:",omitempty"`
	NonRecursive           bool   `json:",omitempty"`
	CreateMountpoint       bool   `json:",omitempty"`
	ReadOnlyNonRecursive   bool   `json:",omitempty"`
	ReadOnlyForceRecursive bool   `json:",omitempty"`
}

type mount.VolumeOptions struct {
	NoCopy       bool              `json:",omitempty"`
	Labels       map[string]string `json:",omitempty"`
	Subpath      string            `json:",omitempty"`
	DriverConfig *mount.Driver     `json:",omitempty"`
}

type mount.Driver struct {
	Name    string            `json:",omitempty"`
	Options map[string]string `json:",omitempty"`
}

type mount.ImageOptions struct {
	Subpath string `json:",omitempty"`
}

type mount.TmpfsOptions struct {
	SizeBytes int64      `json:",omitempty"`
	Mode      uint32     `json:",omitempty"`
	Options   [][]string `json:",omitempty"`
}

type mount.ClusterOptions struct {
}

// The top level's Mounts.
type types.MountPoints []types.MountPoint

type types.MountPoint struct {
	Type        string `json:",omitempty"`
	Name        string `json:",omitempty"`
	Source      string
	Destination string
	Driver      string `json:",omitempty"`
	Mode        string
	RW          bool
	Propagation string
}
