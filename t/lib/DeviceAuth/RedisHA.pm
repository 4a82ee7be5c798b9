package DeviceAuth::RedisHA;

# Redis that survives a node loss and grows past one node (issue 12):
# helpers of t/sentinel.t and t/cluster.t, on top of DeviceAuth::Test.
# Every process is started by the test's DeviceAuth::Test object
# (daemon_start), on a loopback port of its own, in its own directory of
# the test directory, and stopped by it.
#
#   redis_node($t, NAME, ARGS...)     redis-server on port($t, NAME),
#                                     directory TESTDIR/NAME; its port
#   sentinel($t, NAME, MASTER_PORT, CONF_LINES...)
#                                     redis-sentinel monitoring "devices"
#   cli($t, NAME or PORT, ARGS...)    redis-cli's output (chomped); a
#                                     password comes from %PASSWORD
#   info($t, NAME, SECTION)           INFO as a hash
#   commandstats($t, NAME)            { command => calls } (rejected
#                                     calls added)
#   edge_commands($t, NAME)           "command=calls ..." of what only a
#                                     client like the edge sends there, and
#                                     of any command refused; "" for none
#   poll(SECONDS, SUB)                SUB until it returns true, every
#                                     50 ms: its value, or undef at the end
#   ka_open($t, DEVICE) / ka_get(CONN, PATH)
#                                     one keepalive TLS connection of a
#                                     device, requests sent on it in turn
#   loadgen($t, ARGS...)              bench/loadgen in the background; a sub
#                                     that waits for it and returns its JSON
#                                     results (status, errors, requests)
#   others(RESULT, STATUS...)         statuses other than those, "s=n ..."
#   errors(RESULT, ERROR...)          transport errors other than those
#   device($t, HEX6)                  a new device of the PKI's signer1,
#                                     serial 0123 HEX6 <12 hex digits>
#   status($t, DEVICE, PATH)          "STATUS X-Status" of one request
#   becomes($t, DEVICE, WANT, PATH, SECONDS)
#                                     polls until status() is WANT: 1, or 0
#                                     (said in a diag)
#   revoke($t, NODE, DEVICE[, @CLI])  SET its revoked key on NODE (with
#                                     redis-cli options, e.g. -c)
#   count_log($t, RE, MARK), wait_log($t, RE, N, MARK, SECONDS)
#                                     matches in error.log since MARK;
#                                     until there are N of them
#   key_slot(KEY)                     its Redis Cluster slot (CRC16 of the
#                                     key or of its {hash tag})
#   cluster_nodes($t, NAME)           CLUSTER NODES as NAME sees it: a list
#                                     of { id, port, flags, master, slots
#                                     => [[first, last]...] }

use strict;
use warnings;

use Exporter qw(import);
use IO::Socket::SSL;
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(redis_node sentinel cli info commandstats edge_commands
                    poll ka_open ka_get loadgen others errors device status
                    becomes revoke count_log wait_log key_slot
                    cluster_nodes %PASSWORD);

# the password of a node or sentinel, by name or port, for cli()
our %PASSWORD;


sub redis_node {
    my ($t, $name, @args) = @_;

    my $port = $t->port($name);
    my $dir = $t->testdir . "/$name";
    mkdir $dir;

    $t->daemon_start($name, $port, 'redis-server', '--port', $port,
                     '--bind', '127.0.0.1', '--save', '',
                     '--appendonly', 'no', '--daemonize', 'no',
                     '--dir', $dir, '--logfile', "$dir/redis.log", @args);

    return $port;
}


# a sentinel of the master "devices" at 127.0.0.1:MASTER_PORT, quorum 2,
# with the lines given (sentinel down-after-milliseconds devices ...)

sub sentinel {
    my ($t, $name, $master, @lines) = @_;

    my $port = $t->port($name);
    my $dir = $t->testdir . "/$name";
    mkdir $dir;

    $t->write_file("$dir/sentinel.conf", join('', map { "$_\n" }
        "port $port", 'bind 127.0.0.1', 'daemonize no', "dir $dir",
        "logfile $dir/sentinel.log",
        "sentinel monitor devices 127.0.0.1 $master 2", @lines));

    $t->daemon_start($name, $port, 'redis-sentinel', "$dir/sentinel.conf");

    return $port;
}


sub cli {
    my ($t, $node, @args) = @_;

    my $port = $node =~ /^\d+$/ ? $node : $t->port($node);
    my $pw = $PASSWORD{$node} // $PASSWORD{$port};

    my $pid = open(my $fh, '-|') // die "fork: $!";

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec 'redis-cli', '--no-auth-warning', '-h', '127.0.0.1', '-p', $port,
             (defined $pw ? ('-a', $pw) : ()), @args;
        exit 127;
    }

    my $out = do { local $/; <$fh> } // '';
    close $fh;
    $out =~ s/\s+\z//;

    return wantarray ? split(/\n/, $out) : $out;
}


sub info {
    my ($t, $node, $section) = @_;
    my %i;

    for (cli($t, $node, 'INFO', $section || 'default')) {
        s/\r$//;
        $i{$1} = $2 if /^([^#:]+):(.*)$/;
    }

    return \%i;
}


# every call of a command there, including those refused (READONLY...)

sub commandstats {
    my ($t, $node) = @_;
    my %c;

    for (cli($t, $node, 'INFO', 'commandstats')) {
        next unless /^cmdstat_(\S+):calls=(\d+)/;
        my ($cmd, $n) = ($1, $2);
        $n += $1 if /rejected_calls=(\d+)/;
        $c{$cmd} = $n;
    }

    return \%c;
}


# What only a client such as the edge sends (replication brings the writes
# of a master to its replicas, and sentinels subscribe and publish there:
# not those), those of its commands that were refused (a write to a replica
# is refused: "rejected_calls"), and the clients connected but sentinels,
# replication and redis-cli itself.  "what=n ..." of those, "" for none.
# Other commands' refusals are not the edge's: a sentinel's PING is
# refused with -LOADING while a node that became a replica loads its new
# primary's data, and the harness' first PING with -NOAUTH.

my %EDGE = map { $_ => 1 } qw(evalsha eval get exists pttl script|load
                              client|tracking client|caching client|id);

sub edge_commands {
    my ($t, $node) = @_;
    my @c;

    for (cli($t, $node, 'INFO', 'commandstats')) {
        next unless /^cmdstat_(\S+):calls=(\d+)/;
        my ($cmd, $n) = ($1, $2);
        push @c, "$cmd=$n" if $EDGE{$cmd} && $n;
        push @c, "$cmd(rejected)=$1"
            if $EDGE{$cmd} && /rejected_calls=(\d+)/ && $1;
    }

    for (cli($t, $node, 'CLIENT', 'LIST')) {
        next if /\bname=sentinel-/ || /\bflags=[^ ]*[SM]/
                || /\bcmd=client\|list\b/;
        push @c, 'client(' . (/\bcmd=(\S+)/ ? $1 : '?') . ')';
    }

    return join ' ', @c;
}


sub poll {
    my ($limit, $sub) = @_;
    my $end = time() + $limit;

    while (1) {
        my $v = $sub->();
        return $v if $v;
        return undef if time() > $end;
        sleep(0.05);
    }
}


# a TLS connection of DEVICE to the edge, kept open

sub ka_open {
    my ($t, $dev, %o) = @_;

    return IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $o{port} || $t->port(0),
        Timeout => 10, SSL_verify_mode => SSL_VERIFY_NONE,
        SSL_hostname => '',
        SSL_cert_file => $t->pki_file("$dev.chain.pem"),
        SSL_key_file => $t->pki_file("$dev.key"));
}


# "STATUS X-Status" of a request sent on it, or "0 <error>"

sub ka_get {
    my ($conn, $path) = @_;

    return '0 closed' unless $conn;

    print $conn "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n"
        or return "0 write: $!";

    my $head = '';

    while ($head !~ /\r\n\r\n/) {
        my $n = sysread($conn, my $buf, 1);
        return '0 closed' unless $n;
        $head .= $buf;
    }

    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my ($x) = $head =~ /^X-Status: (\S*)/mi;
    my ($len) = $head =~ /^Content-Length: (\d+)/mi;

    my $body = '';
    while (length $body < ($len // 0)) {
        my $n = sysread($conn, my $buf, $len - length $body);
        return '0 closed' unless $n;
        $body .= $buf;
    }

    return ($status // 0) . ' ' . ($x // '-');
}


my $runs = 0;

sub loadgen {
    my ($t, @args) = @_;

    my $bin = DeviceAuth::Test->repo . '/bench/loadgen';
    my $json = $t->testdir . '/load.' . ++$runs . '.json';

    my $pid = fork() // die "fork: $!";

    if ($pid == 0) {
        open STDOUT, '>', "$json.out";
        open STDERR, '>&', \*STDOUT;
        exec $bin, '--signer-cert', $t->pki_file('signer1.pem'),
             '--signer-key', $t->pki_file('signer1.key'),
             '--fleet-cache', $t->testdir . '/fleet', '-q', @args,
             '--json', $json;
        exit 127;
    }

    return sub {
        waitpid($pid, 0);
        return _json($json);
    };
}


# the loadgen JSON is flat enough for a few regexps

sub _json {
    my ($file) = @_;

    open my $fh, '<', $file or return { missing => 1, status => {} };
    local $/;
    my $j = <$fh>;
    close $fh;

    my %r;
    my ($status) = $j =~ /"status"\s*:\s*\{([^}]*)\}/;
    $r{status}{$1} = $2 while ($status // '') =~ /"(\d+)"\s*:\s*(\d+)/g;
    my ($errors) = $j =~ /"errors"\s*:\s*\{([^}]*)\}/;
    $r{errors}{$1} = $2 while ($errors // '') =~ /"(\w+)"\s*:\s*(\d+)/g;
    ($r{requests}) = $j =~ /"requests"\s*:\s*(\d+)/;

    return \%r;
}


sub others {
    my ($r, @allowed) = @_;
    my %ok = map { $_ => 1 } @allowed;

    return join ' ', map { "$_=$r->{status}{$_}" }
                     grep { !$ok{$_} } sort keys %{ $r->{status} };
}


# "keepalive" (a reused connection closed by nginx as the next request went
# out) is the race of every keepalive client, retried: not a failure

sub errors {
    my ($r, @allowed) = @_;
    my %ok = map { $_ => 1 } 'keepalive', @allowed;

    return join ' ', map { "$_=$r->{errors}{$_}" }
                     grep { !$ok{$_} && $r->{errors}{$_} }
                     sort keys %{ $r->{errors} };
}


my %devices;

sub device {
    my ($t, $hex) = @_;

    my $n = ++$devices{$hex};
    my $serial = sprintf('0123%s%012X', $hex, $n);

    return { name => $t->make_device(name => "d$hex$n", serial => $serial),
             serial => $serial };
}


sub status {
    my ($t, $dev, $path) = @_;

    my $r = $t->https_get(device => $dev->{name}, path => $path || '/');

    return ($r->{status} || 0) . ' ' . ($r->{headers}{'x-status'} || '-');
}


sub becomes {
    my ($t, $dev, $want, $path, $limit) = @_;
    my $last = '';

    return 1 if poll($limit || 20 * ($t->sanitizer ? 3 : 1),
                     sub { ($last = status($t, $dev, $path)) eq $want });

    Test::More::diag("still \"$last\", not \"$want\"");
    return 0;
}


sub revoke {
    my ($t, $node, $dev, @opts) = @_;

    return cli($t, $node, @opts, 'SET',
               "device_auth:{$dev->{serial}}:revoked", 'stolen');
}


sub count_log {
    my ($t, $re, $mark) = @_;

    my $n = () = $t->read_error_log($mark) =~ /$re/g;

    return $n;
}


sub wait_log {
    my ($t, $re, $n, $mark, $limit) = @_;

    return poll($limit || 30 * ($t->sanitizer ? 3 : 1),
                sub { count_log($t, $re, $mark) >= $n });
}


sub key_slot {
    my ($key) = @_;

    my $open = index($key, '{');

    if ($open >= 0) {
        my $close = index($key, '}', $open + 1);
        $key = substr($key, $open + 1, $close - $open - 1)
            if $close > $open + 1;
    }

    my $crc = 0;

    for my $byte (unpack('C*', $key)) {
        $crc ^= $byte << 8;
        for (1 .. 8) {
            $crc = $crc & 0x8000 ? (($crc << 1) ^ 0x1021) : $crc << 1;
            $crc &= 0xffff;
        }
    }

    return $crc & 16383;
}


sub cluster_nodes {
    my ($t, $node) = @_;
    my @nodes;

    for (cli($t, $node, 'CLUSTER', 'NODES')) {
        my ($id, $addr, $flags, $master, undef, undef, undef, $state, @slots)
            = split ' ';
        next unless defined $state;

        my ($port) = $addr =~ /:(\d+)@/;
        my @ranges;

        for (@slots) {
            next if /^\[/;     # a slot being migrated
            my ($a, $b) = split /-/;
            push @ranges, [$a, $b // $a];
        }

        push @nodes, { id => $id, port => $port, flags => $flags,
                       master => $master, state => $state,
                       slots => \@ranges };
    }

    return @nodes;
}


1;
