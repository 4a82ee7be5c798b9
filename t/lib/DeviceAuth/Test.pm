package DeviceAuth::Test;

# Test harness of ngx_http_device_auth_module, in the spirit of nginx-tests'
# Test::Nginx.  One object per test file:
#
#   use FindBin; use lib "$FindBin::Bin/lib";
#   use Test::More;
#   use DeviceAuth::Test qw(upstream_values);
#
#   my $t = DeviceAuth::Test->new();
#   $t->write_conf(<<'EOF');
#   http {
#       server {
#           listen 127.0.0.1:%%PORT_0%% ssl;
#           ssl_certificate     %%PKI%%/server.pem;
#           ssl_certificate_key %%PKI%%/server.key;
#           device_auth_certificate %%PKI%%/roots.pem;
#           location / { device_auth on; proxy_pass http://%%ECHO%%; }
#       }
#   }
#   EOF
#   $t->run();
#   my $r = $t->https_get(device => 'dev1', path => '/');
#   is($r->{status}, 200);
#   is_deeply([upstream_values($r, 'X-Device-Serial')], [$t->serial('dev1')]);
#   $t->check_error_log();      # stops nginx, no crash / [alert] lines
#   done_testing();
#
# Placeholders in templates (write_conf):
#   %%MODULE%%      absolute path of the module .so
#   %%PKI%%         directory of the test PKI (t/lib/mkpki.sh)
#   %%TESTDIR%%     the temporary directory of this test file
#   %%PORT_<n>%%    free loopback TCP port number n (any n >= 0)
#   %%ECHO%%        127.0.0.1:<port> of the echo upstream (t/lib/echo.pl);
#   %%ECHO_PORT%%   its port.  Using either makes run() start it.
#   %%REDIS_PORT%%  port, and %%REDIS_SOCKET%% unix socket path, of the
#                   redis-server that redis_start() starts (allocated as
#                   soon as they appear; start it with redis_start()).
#   %%REDIS_TIMEOUT%%  "200ms" (the default device_auth_redis_timeout),
#                   longer under a sanitizer or valgrind: for tests that
#                   are not about timeouts
#
# write_conf() also adds, unless the template has them: load_module of the
# module, pid, error_log (info) in the test directory, "daemon off",
# worker_processes 1, an events block; and inside http: access_log and
# every *_temp_path in the test directory.
#
# nginx 1.22's default ssl_protocols has no TLSv1.3: templates that want it
# say "ssl_protocols TLSv1.2 TLSv1.3;".
#
# Methods (see each one for details):
#   new(), testdir, pki, pki_file(NAME), serial(DEV), fingerprint(NAME)
#   new(prefix => DIR): nginx -p DIR instead of the test directory (t/deb.t:
#   the prefix of Debian's nginx, for its relative module paths)
#   nginx_version, nginx_version_at_least(V), nginx_has_http3
#   make_device(name => ..., serial => ... | cn => ..., not_after => ...)
#   port(N), echo_port, write_conf(TEMPLATE), conf, conf_line(RE),
#   write_file(NAME, DATA), read_file(NAME), expand(TEXT)
#   test_config -> (ok, output); run; reload -> ok; stop; nginx_pid
#   valgrind, sanitizer, skip_under_valgrind(REASON)
#   read_error_log([MARK]), log_mark, wait_error_log(RE, mark => M),
#   read_access_log, logged_status(URI), check_error_log (2 tests, 3 under
#   valgrind)
#   https_get(%args), http_get(%args), curl(@args), certcheck(@args),
#   device_auth(@args), device_auth_split(@args)
#   identity_ok(RES, NAME, DEV, SIGNER) (6 tests)
#   echo_start, echo_stop, echo_requests, daemon_start, daemon_stop,
#   daemon_pid
#   redis_start(@args), redis_cli(@args), redis_stop([SIGNAL]),
#   redis_port, redis_socket, redis_pid, redis_stream(KEY)
# Functions (exported on request): upstream_headers(RES),
#   upstream_values(RES, NAME), new_session_cache(), cert_fingerprint(FILE),
#   capture(@CMD), decision_lines(LOG) (the key=value decision lines,
#   parsed), kv_fields(TEXT), kv_unescape(VALUE)
#
# Environment:
#   NGINX_BINARY          nginx to run (default /usr/sbin/nginx)
#   DEVICE_AUTH_MODULE    module path (default <repo>/build/ngx_http_...so)
#   DEVICE_AUTH_PKI       pre-generated PKI directory (default: generated
#                         into the test directory)
#   DEVICE_AUTH_CLI       the device-auth command (default <repo>/build/
#                         device-auth; make test-asan: its ASan build)
#   DEVICE_AUTH_MANIFEST  the 100,000-entry manifest of t/manifest-big.t,
#                         made once by make (default: made by the test)
#   DEVICE_AUTH_TEST_LEAVE=1  keep the test directory
#   DEVICE_AUTH_SANITIZER=asan  nginx and the module are ASan/UBSan builds
#                         (make test-asan): timeouts of the harness are
#                         longer, and run() waits for the Redis connection
#                         of the workers
#   DEVICE_AUTH_SANITIZER_LOGS  the directory the sanitizers write their
#                         reports to: a report that appears while a test
#                         file runs fails that file at exit
#   DEVICE_AUTH_VALGRIND=1  nginx runs in single-process mode ("master_process
#                         off", added by write_conf) under valgrind memcheck
#                         (make test-valgrind), nginx -t too; each run's log
#                         is valgrind.<pid>.log in the test directory, and an
#                         invalid read/write, a use of uninitialised memory
#                         or a definite leak fails the test file:
#                         check_error_log() is one test more then, and what
#                         it did not see fails the file at exit.  reload()
#                         dies (single-process nginx does not restart its
#                         modules' per-process state): tests needing reloads
#                         or several workers call skip_under_valgrind().
#   DEVICE_AUTH_VALGRIND_OPTS  more valgrind options (e.g. --suppressions=F)

use strict;
use warnings;

use Exporter qw(import);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(rmtree);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Socket::SSL;
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(upstream_headers upstream_values new_session_cache
                    cert_fingerprint capture worker_can_reach decision_lines
                    kv_fields kv_unescape);

our $REPO = abs_path(dirname(__FILE__) . '/../../..');

my @INSTANCES;
my %PORTS_USED;


sub new {
    my ($class, %opts) = @_;

    my $self = bless {
        nginx   => $ENV{NGINX_BINARY} || '/usr/sbin/nginx',
        module  => $ENV{DEVICE_AUTH_MODULE}
                   || "$REPO/build/ngx_http_device_auth_module.so",
        cli     => $ENV{DEVICE_AUTH_CLI} || "$REPO/build/device-auth",
        ports   => {},
        procs   => {},
        pid     => $$,
        valgrind => $ENV{DEVICE_AUTH_VALGRIND} ? 1 : 0,
        sanitizer => $ENV{DEVICE_AUTH_VALGRIND} ? 'valgrind'
                     : $ENV{DEVICE_AUTH_SANITIZER} || '',
        vg_checked => {},
        san_logs => $ENV{DEVICE_AUTH_SANITIZER_LOGS},
        prefix  => $opts{prefix},
    }, $class;

    $self->{san_seen} = { map { $_ => 1 } $self->_san_reports() }
        if $self->{san_logs};

    # how much longer the harness waits for nginx to start, stop, log
    $self->{slow} = $self->{valgrind} ? 10 : $self->{sanitizer} ? 3 : 1;

    $self->{testdir} = tempdir('device-auth-XXXXXXXX', TMPDIR => 1);
    chmod 0755, $self->{testdir};

    # nginx's workers read and write in the test directory (logs, temp
    # files, the unix socket of Redis, html roots)
    worker_can_reach($self->{testdir}, 'x')
        or die "nginx workers (user nobody) cannot enter the test "
               . "directory $self->{testdir}: set TMPDIR to a directory "
               . "that is not private (mode 0700)\n";

    $self->{pki} = File::Spec->rel2abs($ENV{DEVICE_AUTH_PKI}
                                       || "$self->{testdir}/pki");
    $self->_make_pki() unless $opts{no_pki};

    push @INSTANCES, $self;

    return $self;
}


# Started by root, nginx runs its workers as "nobody" (no "user" directive
# in the tests): true when that user can access PATH for MODE ('r', 'w'
# or 'x', as test(1) takes them); always true when not root.

sub worker_can_reach {
    my ($path, $mode) = @_;

    return 1 if $> != 0;

    return system('runuser', '-u', 'nobody', '--', 'test', "-$mode",
                  $path) == 0;
}


sub repo { $REPO }
sub testdir { $_[0]->{testdir} }
sub pki { $_[0]->{pki} }
sub module_path { $_[0]->{module} }
sub nginx_binary { $_[0]->{nginx} }
sub cli_binary { $_[0]->{cli} }

# the version of the nginx under test ("1.29.8"), and whether it was built
# with HTTP/3 (nginx 1.25.0 and later, --with-http_v3_module)

sub nginx_version {
    my ($self) = @_;
    $self->_nginx_V() unless defined $self->{nginx_V};
    return $self->{nginx_V} =~ m{nginx version: \S+?/(\d+\.\d+\.\d+)}
           ? $1 : '0.0.0';
}

sub nginx_has_http3 {
    my ($self) = @_;
    $self->_nginx_V() unless defined $self->{nginx_V};
    return $self->{nginx_V} =~ /--with-http_v3_module\b/ ? 1 : 0;
}

# nginx_version_at_least("1.29.7")

sub nginx_version_at_least {
    my ($self, $want) = @_;
    my @have = split /\./, $self->nginx_version();
    my @want = split /\./, $want;

    for my $i (0 .. 2) {
        return ($have[$i] > $want[$i] ? 1 : 0) if $have[$i] != $want[$i];
    }

    return 1;
}

sub _nginx_V {
    my ($self) = @_;
    my (undef, $out) = _capture($self->{nginx}, '-V');
    $self->{nginx_V} = $out // '';
}

# 1 when nginx runs under valgrind (DEVICE_AUTH_VALGRIND)

sub valgrind { $_[0]->{valgrind} }

# 'asan', 'valgrind', or '' for a plain run

sub sanitizer { $_[0]->{sanitizer} }


# under valgrind, skips the rest of the test file (all of it when no test
# ran yet) with the reason given, e.g. "reloads need the master process";
# nothing otherwise.  A running nginx is stopped and checked first, as by
# check_error_log().

sub skip_under_valgrind {
    my ($self, $reason) = @_;

    return unless $self->{valgrind};

    my $builder = Test::More->builder;

    if ($builder->current_test == 0 && !$builder->has_plan) {
        Test::More::plan(skip_all => "under valgrind: $reason");
    }

    $self->check_error_log() if $self->{procs}{nginx};

    Test::More::note("the rest is skipped under valgrind: $reason");
    Test::More::done_testing();
    exit 0;
}

# a PKI file; a name with a "/" is a path already (make_device())

sub pki_file {
    my ($self, $name) = @_;
    return $name =~ m{/} ? $name : "$self->{pki}/$name";
}


sub _make_pki {
    my ($self) = @_;

    return if -e "$self->{pki}/.done";

    my ($rc, $out) = _capture('bash', "$REPO/t/lib/mkpki.sh", $self->{pki});
    die "mkpki.sh failed:\n$out" if $rc != 0;
}


# serial of a PKI device as the profile computes it (NAME.serial)

sub serial {
    my ($self, $name) = @_;
    return _slurp_line($self->pki_file("$name.serial"));
}


# lowercase hex SHA-256 of a certificate's DER, as "openssl x509
# -fingerprint -sha256" prints it without colons; NAME, a base path from
# make_device(), or a .pem file

sub fingerprint {
    my ($self, $name) = @_;
    my $file = $name =~ /\.pem$/ ? $name : $self->pki_file("$name.pem");
    return cert_fingerprint($file);
}

sub cert_fingerprint {
    my ($file) = @_;
    my ($rc, $out) = _capture('openssl', 'x509', '-in', $file, '-noout',
                              '-fingerprint', '-sha256');
    die "openssl x509 $file: $out" if $rc != 0;
    $out =~ /Fingerprint=([0-9A-F:]+)/i or die "no fingerprint: $out";
    (my $fp = lc $1) =~ s/://g;
    return $fp;
}


# a device certificate made now, in the test directory, by a PKI signer:
#   make_device(name => 'x', serial => '0123...' (18 hex digits) or
#               cn => 'any CN' (a "/CN=..." in it adds another CN),
#               issuer => 'signer1', not_before => epoch,
#               not_after => epoch, curve => 'P-256')
# Writes devices/NAME.pem, .key, .chain.pem (with the issuer), .serial;
# returns the base path, usable as https_get(device => $base).

sub make_device {
    my ($self, %o) = @_;

    my $dir = "$self->{testdir}/devices";
    my $ca = "$dir/ca";

    unless (-d $ca) {
        mkdir $dir;
        mkdir $ca;
        mkdir "$ca/new";
        $self->write_file("$ca/index.txt", '');
        $self->write_file("$ca/openssl.cnf", <<"EOF");
[ ca ]
default_ca = test_ca
[ test_ca ]
database        = $ca/index.txt
new_certs_dir   = $ca/new
serial          = $ca/serial
default_md      = sha256
policy          = policy_any
unique_subject  = no
email_in_dn     = no
[ policy_any ]
organizationName = optional
commonName       = optional
[ req ]
distinguished_name = req_dn
string_mask        = utf8only
prompt             = no
[ req_dn ]
CN = unused
[ v3_device ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyAgreement
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
    }

    my $name = $o{name} or die "make_device: name";
    die "make_device: serial or cn" unless defined $o{serial} || defined $o{cn};
    my $issuer = $o{issuer} || 'signer1';
    my $serial = $o{serial};
    my $cn = defined $o{cn} ? $o{cn} : "sn$serial";
    (my $subj_cn = $cn) =~ s/([+\\])/\\$1/g;
    my $base = "$dir/$name";

    my $time = sub {
        my @t = gmtime(shift);
        return sprintf('%04d%02d%02d%02d%02d%02dZ', $t[5] + 1900, $t[4] + 1,
                       @t[3, 2, 1, 0]);
    };

    my @steps = (
        ['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt',
         'ec_paramgen_curve:' . ($o{curve} || 'P-256'), '-out', "$base.key"],
        ['openssl', 'req', '-config', "$ca/openssl.cnf", '-new', '-key',
         "$base.key", '-subj', "/O=Device Auth Test Inc/CN=$subj_cn", '-out',
         "$base.csr"],
        ['openssl', 'ca', '-batch', '-notext', '-rand_serial', '-preserveDN',
         '-config', "$ca/openssl.cnf", '-cert', "$self->{pki}/$issuer.pem",
         '-keyfile', "$self->{pki}/$issuer.key", '-in', "$base.csr",
         '-extensions', 'v3_device',
         '-startdate', $time->($o{not_before} || time() - 86400),
         '-enddate', $time->($o{not_after} || time() + 86400 * 365),
         '-out', "$base.pem"],
    );

    for my $cmd (@steps) {
        my ($rc, $out) = _capture(@$cmd);
        die "make_device: @$cmd[0, 1]: $out" if $rc != 0;
    }

    $self->write_file("$base.chain.pem", _slurp("$base.pem")
                                         . _slurp("$self->{pki}/$issuer.pem"));
    $self->write_file("$base.serial", (defined $serial ? uc $serial : $cn)
                                      . "\n");

    return $base;
}


# a free loopback port, the same number for the same n in one object

sub port {
    my ($self, $n) = @_;
    $n = 0 unless defined $n;

    return $self->{ports}{$n} if $self->{ports}{$n};

    for (1 .. 100) {
        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1',
            LocalPort => 0,
            Proto     => 'tcp',
            Listen    => 1,
        ) or die "cannot get a free port: $!";

        my $port = $s->sockport();
        close $s;

        next if $PORTS_USED{$port}++;

        # free for UDP too: "listen ... quic" (t/http3.t)
        my $u = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1',
            LocalPort => $port,
            Proto     => 'udp',
        ) or next;
        close $u;

        return $self->{ports}{$n} = $port;
    }

    die "no free port found";
}


sub echo_port {
    my ($self) = @_;
    return $self->port('echo');
}


sub write_file {
    my ($self, $name, $content) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{testdir}/$name";

    open my $fh, '>', $path or die "cannot write $path: $!";
    binmode $fh;
    print $fh $content;
    close $fh;

    return $path;
}


# a random ssl_session_ticket_key file (80 bytes) in the test directory,
# for servers that must read each other's tickets

sub write_ticket_key {
    my ($self, $name) = @_;

    open my $rnd, '<', '/dev/urandom' or die $!;
    read $rnd, my $key, 80;
    close $rnd;

    return $self->write_file($name || 'ticket.key', $key);
}


sub read_file {
    my ($self, $name) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{testdir}/$name";
    return _slurp($path);
}


sub expand {
    my ($self, $text) = @_;
    my $dir = $self->{testdir};

    $text =~ s/%%MODULE%%/$self->{module}/g;
    $text =~ s/%%PKI%%/$self->{pki}/g;
    $text =~ s/%%TESTDIR%%/$dir/g;
    $text =~ s/%%PORT_(\w+)%%/$self->port($1)/ge;
    $text =~ s/%%ECHO%%/'127.0.0.1:' . $self->echo_port()/ge;
    $text =~ s/%%ECHO_PORT%%/$self->echo_port()/ge;
    $text =~ s/%%REDIS_PORT%%/$self->port('redis')/ge;
    $text =~ s/%%REDIS_SOCKET%%/$dir\/redis.sock/g;
    $text =~ s/%%REDIS_TIMEOUT%%/200 * $self->{slow} . 'ms'/ge;

    return $text;
}


sub write_conf {
    my ($self, $template, %opts) = @_;
    my $dir = $self->{testdir};

    my $conf = $self->expand($template);

    my $main = '';

    # main-context directives of the template start at column 0

    $main .= "load_module $self->{module};\n"
        unless $conf =~ /^load_module\b/m || $opts{no_module};
    $main .= "pid $dir/nginx.pid;\n" unless $conf =~ /^pid\b/m;
    $main .= "error_log $dir/error.log info;\n"
        unless $conf =~ /^error_log\b/m;
    $main .= "daemon off;\n" unless $conf =~ /^daemon\b/m;
    $main .= "master_process off;\n"
        if $self->{valgrind} && $conf !~ /^master_process\b/m;
    $main .= "worker_processes 1;\n"
        unless $conf =~ /^worker_processes\b/m;
    $main .= "events {\n}\n" unless $conf =~ /^events\s*\{/m;

    my $http = join('', map { "    $_\n" }
        "access_log $dir/access.log;",
        "client_body_temp_path $dir/client_body_temp;",
        "proxy_temp_path $dir/proxy_temp;",
        "fastcgi_temp_path $dir/fastcgi_temp;",
        "uwsgi_temp_path $dir/uwsgi_temp;",
        "scgi_temp_path $dir/scgi_temp;");

    $conf =~ s/^(\s*http\s*\{)/$1\n$http/m;

    $conf = "# generated by DeviceAuth::Test\n$main\n$conf";

    $self->{conf} = $conf;
    $self->write_file('nginx.conf', $conf);

    return $conf;
}


sub conf { $_[0]->{conf} }


# the line number in nginx.conf of the first line matching a regex

sub conf_line {
    my ($self, $re) = @_;
    my @lines = split /\n/, $self->{conf};

    for my $i (0 .. $#lines) {
        return $i + 1 if $lines[$i] =~ $re;
    }

    return undef;
}


sub _nginx_args {
    my ($self) = @_;
    my $dir = $self->{testdir};
    return ('-p', $self->{prefix} || "$dir/", '-c', "$dir/nginx.conf",
            '-e', "$dir/error.log");
}


# the command that runs nginx: under valgrind, valgrind first (one log
# file per process in the test directory; --error-exitcode makes errors
# visible in the exit code too)

our $VALGRIND_EXIT = 99;

sub _nginx_cmd {
    my ($self) = @_;

    return ($self->{nginx}) unless $self->{valgrind};

    return ('valgrind', '--tool=memcheck', '--leak-check=full',
            '--errors-for-leak-kinds=definite',
            '--show-leak-kinds=definite', '--keep-debuginfo=yes',
            "--error-exitcode=$VALGRIND_EXIT", '--num-callers=40',
            "--log-file=$self->{testdir}/valgrind.%p.log",
            split(' ', $ENV{DEVICE_AUTH_VALGRIND_OPTS} || ''),
            $self->{nginx});
}


# nginx -t: (ok, output) in list context, ok in scalar context

sub test_config {
    my ($self) = @_;

    die "write_conf() first" unless defined $self->{conf};

    my ($rc, $out) = _capture($self->_nginx_cmd(), $self->_nginx_args(),
                              '-t');

    # valgrind's own exit code is not nginx's verdict
    $rc = $out =~ /test is successful/ ? 0 : 1
        if $self->{valgrind} && $rc == $VALGRIND_EXIT;

    return wantarray ? ($rc == 0, $out) : $rc == 0;
}


sub _listen_ports {
    my ($self) = @_;
    my @ports;

    # TCP only: a "listen ... quic" socket (UDP) is bound by the master
    # before the workers start, which run() waits for
    while ($self->{conf} =~ /^\s*listen\s+(?:([\d.]+):)?(\d+)\b([^;]*)/mg) {
        my ($addr, $port, $params) = ($1, $2, $3);
        next if $params =~ /\bquic\b/;
        push @ports, [$addr || '127.0.0.1', $port];
    }

    return @ports;
}


sub run {
    my ($self) = @_;

    die "write_conf() first" unless defined $self->{conf};
    die "nginx already running" if $self->{procs}{nginx};

    $self->echo_start()
        if $self->{ports}{echo} && !$self->{procs}{echo};

    my $mark = $self->log_mark();
    my $pid = $self->_spawn('nginx', "$self->{testdir}/nginx.stderr",
                            $self->_nginx_cmd(), $self->_nginx_args());

    my @ports = $self->_listen_ports();

    unless ($self->_wait_listen($pid, @ports)) {
        my $log = $self->read_error_log();
        $self->_reap('nginx', 'KILL');
        die "nginx did not start:\n$log";
    }

    # the worker must be up, not only the master's sockets (single-process
    # nginx serves once it listens)
    $self->_wait_log(qr/start worker process/, $mark, 5 * $self->{slow})
        unless $self->{valgrind};

    $self->_wait_redis($mark);

    return $self;
}


# Until each worker connected to Redis (when the configuration uses Redis
# and the test's redis-server runs), up to a few seconds, so that a test's
# first request does not race a handshake that takes longer than
# device_auth_redis_timeout on a loaded machine or under a sanitizer
# (it is retried, but the request waiting for it gets the fail mode).  A
# refusal that no retry mends (a wrong password, a refused SELECT, Redis
# not listening) ends the wait at once.  (Not after reload(): tests reload
# with Redis paused.)

sub _wait_redis {
    my ($self, $mark) = @_;

    return unless $self->{procs}{redis}
                  && $self->{conf} =~ /^\s*device_auth_redis\s/m;

    my $end = time() + 3 * $self->{slow};

    while (time() < $end) {
        my $log = $self->read_error_log($mark);
        my $workers = () = $log =~ /start worker process/g;
        my $ready = () = $log =~ /device_auth: connected to redis/g;

        return 1 if $ready >= ($self->{valgrind} ? 1 : $workers || 1);
        return 0 if $log =~ /device_auth: (cannot connect to redis|redis "[^"]+" failed)/;

        sleep(0.05);
    }

    return 0;
}


sub nginx_pid { $_[0]->{procs}{nginx} }


# graceful reconfiguration; true when the new configuration was loaded

sub reload {
    my ($self) = @_;
    my $pid = $self->{procs}{nginx} or die "nginx is not running";

    die "reload() under valgrind: single-process nginx does not restart "
        . "its modules' per-process state; skip_under_valgrind() first\n"
        if $self->{valgrind};

    my $mark = $self->log_mark();

    kill 'HUP', $pid;

    my $end = time() + 10 * $self->{slow};

    while (time() < $end) {
        my $log = $self->read_error_log($mark);

        return 0 if $log =~ /\[emerg\]/;

        if ($log =~ /start worker process/) {
            # the old worker no longer accepts once it says so
            $self->_wait_log(qr/gracefully shutting down/, $mark,
                             3 * $self->{slow});
            return 1;
        }

        sleep(0.05);
    }

    return 0;
}


sub stop {
    my ($self) = @_;

    $self->_reap('nginx', 'QUIT');
    $self->echo_stop();
    $self->redis_stop();
    $self->_reap($_, 'TERM') for keys %{ $self->{procs} };

    return $self;
}


# a helper server of a test (a fake Redis...): NAME, the loopback port it
# listens on once ready, the command; stopped by daemon_stop(NAME) (SIGTERM;
# daemon_stop(NAME, 'KILL') for a crash) or at the end; daemon_pid(NAME)

sub daemon_start {
    my ($self, $name, $port, @cmd) = @_;

    my $pid = $self->_spawn($name, "$self->{testdir}/$name.stderr", @cmd);

    $self->_wait_listen($pid, ['127.0.0.1', $port])
        or die "$name did not start: "
               . _slurp("$self->{testdir}/$name.stderr");

    return $pid;
}

sub daemon_stop {
    my ($self, $name, $signal) = @_;
    $self->_reap($name, $signal || 'TERM');
}

sub daemon_pid { $_[0]->{procs}{$_[1]} }


sub echo_start {
    my ($self) = @_;

    return if $self->{procs}{echo};

    my $port = $self->echo_port();
    my $pid = $self->_spawn('echo', "$self->{testdir}/echo.stderr",
                            $^X, "$REPO/t/lib/echo.pl", $port, 4,
                            "$self->{testdir}/echo.log");

    $self->_wait_listen($pid, ['127.0.0.1', $port])
        or die "echo upstream did not start: "
               . _slurp("$self->{testdir}/echo.stderr");

    return $port;
}


sub echo_stop {
    my ($self) = @_;
    $self->_reap('echo', 'TERM');
}


# request lines the echo upstream received so far, oldest first

sub echo_requests {
    my ($self) = @_;
    return split /\n/, _slurp("$self->{testdir}/echo.log");
}


# redis-server on a free loopback port and a unix socket (mode 777) in the
# test directory, no persistence; extra arguments are passed on, e.g.
# redis_start('--requirepass', 'secret').  The port stays the same over
# restarts within one test file.

sub redis_start {
    my ($self, @args) = @_;

    return $self->port('redis') if $self->{procs}{redis};

    my $dir = $self->{testdir};
    my $port = $self->port('redis');

    $self->{redis_args} = [@args];

    my $pid = $self->_spawn('redis', "$dir/redis.stderr",
        'redis-server', '--port', $port, '--bind', '127.0.0.1',
        '--save', '', '--appendonly', 'no', '--daemonize', 'no',
        '--dir', $dir, '--logfile', "$dir/redis.log",
        '--unixsocket', "$dir/redis.sock", '--unixsocketperm', '777',
        @args);

    $self->_wait_listen($pid, ['127.0.0.1', $port])
        or die "redis-server did not start: " . _slurp("$dir/redis.log");

    return $port;
}


sub redis_port { $_[0]->port('redis') }
sub redis_socket { "$_[0]->{testdir}/redis.sock" }
sub redis_pid { $_[0]->{procs}{redis} }


# redis-cli against the test server: output (chomped) in scalar context,
# lines in list context.  Arguments go as they are (no shell).

sub redis_cli {
    my ($self, @args) = @_;

    my ($rc, $out) = _capture('redis-cli', '--no-auth-warning',
                              '-h', '127.0.0.1', '-p', $self->port('redis'),
                              @args);
    chomp $out;

    return wantarray ? split(/\n/, $out) : $out;
}


# the entries of a stream, oldest first, each { id => ..., field => value }
# (fields of any number: the audit's vary); redis_stream(KEY, '+', '-')
# for the newest first

sub redis_stream {
    my ($self, $key, @range) = @_;

    require JSON::PP;

    @range = ('-', '+') unless @range;

    my $cmd = $range[0] eq '+' ? 'XREVRANGE' : 'XRANGE';
    my $out = $self->redis_cli('--json', $cmd, $key, @range);
    my $list = $out =~ /^\[/ ? JSON::PP::decode_json($out) : [];

    return map { { id => $_->[0], @{ $_->[1] } } } @$list;
}


# redis_stop(): SIGTERM; redis_stop('KILL') to simulate a crash

sub redis_stop {
    my ($self, $signal) = @_;
    $self->_reap('redis', $signal || 'TERM');
}


# a process started by the harness, with its stderr in a file

sub _spawn {
    my ($self, $name, $stderr, @cmd) = @_;

    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $stderr;
        open STDERR, '>>', $stderr;
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }

    $self->{procs}{$name} = $pid;

    return $pid;
}


sub _children {
    my ($pid) = @_;
    my @kids;

    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh>;
        close $fh;
        next unless defined $line;
        # pid (comm) state ppid ...
        if ($line =~ /^(\d+) \(.*\) \S+ (\d+) /s && $2 == $pid) {
            push @kids, $1;
        }
    }

    return @kids;
}


# stop a started process: signal, wait up to 10 s (longer for slow
# builds: valgrind's leak check at exit), then SIGKILL it and whatever
# children it left (nginx workers, echo workers).  The wait status is kept
# in $self->{status}{NAME}.

sub _reap {
    my ($self, $name, $signal) = @_;

    my $pid = delete $self->{procs}{$name} or return;

    return if $self->{pid} != $$;   # a forked child: not ours to stop

    my @kids = _children($pid);

    kill $signal, $pid;

    my $end = time() + 10 * $self->{slow};
    my $done = 0;

    while (time() < $end) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid || $r == -1) {
            $self->{status}{$name} = $r == $pid ? $? : undef;
            $done = 1;
            last;
        }
        sleep(0.02);
    }

    if (!$done) {
        Test::More::diag("$name (pid $pid) did not exit on SIG$signal, "
                         . "killing it");
        @kids = (@kids, _children($pid));
        kill 'KILL', $pid, @kids;
        waitpid($pid, 0);
    }

    # orphans, if any (their parent is gone)
    for my $k (@kids) {
        kill 'KILL', $k if kill 0, $k;
    }
}


sub _wait_listen {
    my ($self, $pid, @addrs) = @_;
    my $end = time() + 10 * $self->{slow};

    for my $a (@addrs) {
        while (1) {
            return 0 if waitpid($pid, WNOHANG) == $pid;

            my $s = IO::Socket::INET->new(
                PeerAddr => $a->[0],
                PeerPort => $a->[1],
                Proto    => 'tcp',
            );

            if ($s) {
                close $s;
                last;
            }

            return 0 if time() > $end;
            sleep(0.02);
        }
    }

    return 1;
}


sub _wait_log {
    my ($self, $re, $mark, $timeout) = @_;
    my $end = time() + $timeout;

    while (time() < $end) {
        return 1 if $self->read_error_log($mark) =~ $re;
        sleep(0.02);
    }

    return 0;
}


# error.log from a byte offset (log_mark()) or from the beginning

sub read_error_log {
    my ($self, $mark) = @_;
    my $log = _slurp("$self->{testdir}/error.log");
    return defined $mark ? substr($log, $mark < length $log ? $mark
                                                            : length $log)
                         : $log;
}


sub log_mark {
    my ($self) = @_;
    return -s "$self->{testdir}/error.log" || 0;
}


# wait until error.log (from mark) matches; returns the log or undef

sub wait_error_log {
    my ($self, $re, %opts) = @_;
    return $self->_wait_log($re, $opts{mark},
                            $opts{timeout} || 5 * $self->{slow})
           ? $self->read_error_log($opts{mark}) : undef;
}


sub read_access_log {
    my ($self) = @_;
    return _slurp("$self->{testdir}/access.log");
}


# the status the access log (combined format, written when the request
# ends, so polled) shows for the last request whose URI is exactly $uri

sub logged_status {
    my ($self, $uri, $timeout) = @_;
    my $end = time() + ($timeout || 3 * $self->{slow});
    my $re = qr/"[A-Z]+ \Q$uri\E HTTP\/[\d.]+" (\d{3}) /;

    while (1) {
        my @st = map { /$re/ ? $1 : () } split /\n/, $self->read_access_log();
        return $st[-1] if @st;
        return undef if time() > $end;
        sleep(0.02);
    }
}


# stops nginx (gracefully, so that crashes at exit count too), then asserts
# that error.log has no crash and no [alert] line: 2 tests; under valgrind
# a third: no memory error and no definite leak in any valgrind log so far

sub check_error_log {
    my ($self) = @_;

    $self->_reap('nginx', 'QUIT');

    my $log = $self->read_error_log();

    my @crash = grep { /exited on signal|core dumped|segmentation/i }
                split /\n/, $log;
    my @alert = grep { /\[alert\]/ } split /\n/, $log;

    Test::More::ok(!@crash, 'no worker crash in error.log')
        or Test::More::diag(join "\n", @crash);
    Test::More::ok(!@alert, 'no [alert] in error.log')
        or Test::More::diag(join "\n", @alert);

    return unless $self->{valgrind};

    my $st = $self->{status}{nginx};
    my @bad = $self->_valgrind_errors();

    push @bad, "nginx under valgrind: wait status $st"
        if defined $st && $st != 0 && ($st >> 8) != $VALGRIND_EXIT;

    Test::More::ok(!@bad, 'valgrind: no memory error, no definite leak')
        or Test::More::diag(join "\n", @bad);
}


# the sanitizer report files there are (DEVICE_AUTH_SANITIZER_LOGS)

sub _san_reports {
    my ($self) = @_;
    return () unless $self->{san_logs};
    return sort glob "$self->{san_logs}/*";
}


# valgrind logs of this test directory not looked at yet: the reports of
# those with errors (ERROR SUMMARY > 0 counts definite leaks too, by
# --errors-for-leak-kinds=definite), or a note that a log is incomplete
# (the process did not get to its summary: killed)

sub _valgrind_errors {
    my ($self) = @_;
    my @bad;

    for my $f (sort glob "$self->{testdir}/valgrind.*.log") {
        next if $self->{vg_checked}{$f}++;

        my $text = _slurp($f);

        if ($text !~ /ERROR SUMMARY: (\d+) errors/) {
            push @bad, "$f: no ERROR SUMMARY (killed?):\n$text";
            next;
        }

        next if $1 == 0;

        # the reports, without valgrind's banner
        my $banner = qr/^==\d+== (?:Memcheck|Copyright|Using Valgrind
                                  |Command|Parent\ PID|$)/x;
        my @lines = grep { !/$banner/ } split /\n/, $text;

        push @bad, "$f: $1 error(s):\n" . join("\n", @lines);
    }

    return @bad;
}


# a client TLS session cache for https_get(session_cache => ...): the
# sessions of every connection made with it, by session_key

sub new_session_cache {
    return bless {
        cache => IO::Socket::SSL::Session_Cache->new(16),
        ctx   => {},
    }, 'DeviceAuth::Test::SessionCache';
}


# one HTTPS (or, with plain => 1, HTTP) connection; options:
#   port        port number (default port 0), or addr => '127.0.0.1'
#   path        '/' (or paths => [...] for several requests)
#   method      'GET'; body => '...' sends Content-Length and the body
#   host        Host header (default 'localhost'); undef host_header => 1
#               to send none
#   headers     [[name, value], ...], sent as they are
#   device      PKI device name (or make_device() path): cert
#               NAME.chain.pem, key NAME.key; leaf_only => 1: NAME.pem
#   cert, key   client certificate (a chain file is fine) and key files;
#               they win over what device implies
#   sni         server name to send (none by default: 127.0.0.1)
#   ssl_version 'TLSv1_2' or 'TLSv1_3'
#   session_cache  from new_session_cache(), for resumption;
#               session_key (default "127.0.0.1:port")
#   keepalive   n: n requests on the one connection (HTTP/1.1 keep-alive)
#   between     sub { my ($i) = @_; ... }: runs before request $i > 0 of
#               the connection (e.g. to revoke the device meanwhile)
#   local_addr  source address, e.g. 127.0.0.5
#   timeout     seconds (default 10)
# Returns a hash: status, reason, headers (lower-case name => value, several
# joined with ", "), header_list ([name, value] ...), body, reused (TLS
# session was resumed), ssl_version, responses (all responses, with
# keepalive), error (when the connection or a response failed), raw.

sub https_get {
    my ($self, %args) = @_;

    my $port = $args{port} || $self->port(0);
    my $addr = $args{addr} || '127.0.0.1';
    my $timeout = $args{timeout} || 10 * $self->{slow};
    my $sock;

    my %common = (
        PeerAddr => $addr,
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => $timeout,
        $args{local_addr} ? (LocalAddr => $args{local_addr}) : (),
    );

    if ($args{plain}) {
        $sock = IO::Socket::INET->new(%common)
            or return { error => "connect: $!" };

    } else {
        my ($cert, $key) = ($args{cert}, $args{key});

        if ($args{device}) {
            $cert ||= $self->pki_file($args{device}
                          . ($args{leaf_only} ? '.pem' : '.chain.pem'));
            $key ||= $self->pki_file("$args{device}.key");
        }

        my %ctx = (
            SSL_verify_mode => SSL_VERIFY_NONE,
            $cert ? (SSL_cert_file => $cert, SSL_key_file => $key) : (),
            $args{ssl_version} ? (SSL_version => $args{ssl_version}) : (),
        );

        my %conn = (
            SSL_hostname => defined $args{sni} ? $args{sni} : '',
        );

        if (my $sc = $args{session_cache}) {

            # IO::Socket::SSL forgets a context's sessions when the context
            # is freed: one context per set of options lives in the cache

            my $sig = join "\0", map { "$_=$ctx{$_}" } sort keys %ctx;

            $sc->{ctx}{$sig} ||= IO::Socket::SSL::SSL_Context->new(
                %ctx, SSL_session_cache => $sc->{cache})
                or return { error => "TLS context: $SSL_ERROR" };

            %ctx = (SSL_reuse_ctx => $sc->{ctx}{$sig});
            $conn{SSL_session_key} = $args{session_key} || "$addr:$port";
        }

        $sock = IO::Socket::SSL->new(%common, %ctx, %conn)
            or return { error => "TLS: " . ($SSL_ERROR || $!) };
    }

    my @paths = $args{paths} ? @{ $args{paths} }
                             : (($args{path} || '/') x ($args{keepalive} || 1));
    my @responses;
    my $buf = '';
    my $error;

    for my $i (0 .. $#paths) {
        my $last = $i == $#paths;

        $args{between}->($i) if $args{between} && $i > 0;

        my $req = $self->_request($paths[$i], \%args, $last);

        if (!_write_all($sock, $req)) {
            $error = "write: $!";
            last;
        }

        my $r = _read_response($sock, \$buf, $args{method} || 'GET',
                               $timeout);
        push @responses, $r;

        if ($r->{error}) {
            $error = $r->{error};
            last;
        }
    }

    my %res = %{ $responses[0] || {} };

    $res{responses} = \@responses;
    $res{error} = $error if $error;

    unless ($args{plain}) {
        $res{reused} = $sock->get_session_reused() ? 1 : 0;
        $res{ssl_version} = $sock->get_sslversion();
    }

    close $sock;

    return \%res;
}


sub http_get {
    my ($self, %args) = @_;
    return $self->https_get(%args, plain => 1);
}


sub _request {
    my ($self, $path, $args, $last) = @_;

    my $method = $args->{method} || 'GET';
    my $host = exists $args->{host} ? $args->{host} : 'localhost';
    my $req = "$method $path HTTP/1.1\r\n";

    $req .= "Host: $host\r\n" if defined $host;

    for my $h (@{ $args->{headers} || [] }) {
        $req .= "$h->[0]: $h->[1]\r\n";
    }

    $req .= "Content-Length: " . length($args->{body}) . "\r\n"
        if defined $args->{body};
    $req .= "Connection: " . ($last ? 'close' : 'keep-alive') . "\r\n";
    $req .= "\r\n";
    $req .= $args->{body} if defined $args->{body};

    return $req;
}


sub _write_all {
    my ($sock, $data) = @_;
    my $off = 0;

    while ($off < length $data) {
        my $n = $sock->syswrite($data, length($data) - $off, $off);
        return 0 unless $n;
        $off += $n;
    }

    return 1;
}


sub _fill {
    my ($sock, $buf, $timeout) = @_;
    my $n;

    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm($timeout);
        $n = $sock->sysread($$buf, 65536, length $$buf);
        alarm(0);
    };
    alarm(0);

    return $@ ? undef : $n;
}


sub _read_response {
    my ($sock, $buf, $method, $timeout) = @_;

    while ($$buf !~ /\r\n\r\n/) {
        my $n = _fill($sock, $buf, $timeout);
        if (!$n) {
            return { error => length $$buf ? 'incomplete response header'
                                           : 'connection closed',
                     raw => $$buf };
        }
    }

    $$buf =~ s/^(.*?)\r\n\r\n//s;
    my $head = $1;
    my @lines = split /\r\n/, $head;
    my $status_line = shift @lines;

    my ($status, $reason) = $status_line =~ m{^HTTP/\d\.\d (\d{3}) ?(.*)$}
        or return { error => "bad status line: $status_line", raw => $head };

    my (@list, %headers);

    for my $line (@lines) {
        my ($n, $v) = $line =~ /^([^:]+):\s*(.*)$/ or next;
        push @list, [$n, $v];
        $headers{lc $n} = exists $headers{lc $n} ? "$headers{lc $n}, $v" : $v;
    }

    my $body = '';
    my $error;

    if ($method eq 'HEAD' || $status =~ /^(1..|204|304)$/) {
        # no body

    } elsif (($headers{'transfer-encoding'} || '') =~ /chunked/i) {
        while (1) {
            while ($$buf !~ /\r\n/) {
                _fill($sock, $buf, $timeout) or do {
                    $error = 'incomplete chunked body';
                    last;
                };
            }
            last if $error;

            $$buf =~ s/^([0-9a-fA-F]+)[^\r]*\r\n//
                or do { $error = 'bad chunk'; last };
            my $size = hex $1;

            while (length $$buf < $size + 2) {
                _fill($sock, $buf, $timeout) or do {
                    $error = 'incomplete chunk';
                    last;
                };
            }
            last if $error;

            if ($size == 0) {
                # no trailers expected
                $$buf =~ s/^\r\n//;
                last;
            }

            $body .= substr($$buf, 0, $size);
            substr($$buf, 0, $size + 2, '');
        }

    } elsif (defined $headers{'content-length'}) {
        my $len = $headers{'content-length'};

        while (length $$buf < $len) {
            _fill($sock, $buf, $timeout) or do {
                $error = 'incomplete body';
                last;
            };
        }

        $body = substr($$buf, 0, $len);
        substr($$buf, 0, length $body, '');

    } else {
        while (_fill($sock, $buf, $timeout)) { }
        $body = $$buf;
        $$buf = '';
    }

    return {
        status      => $status,
        reason      => $reason,
        headers     => \%headers,
        header_list => \@list,
        body        => $body,
        raw         => "$head\r\n\r\n$body",
        $error ? (error => $error) : (),
    };
}


# what the echo upstream received: ([name, value], ...) from its body

sub upstream_headers {
    my ($r) = @_;

    return () unless $r && ($r->{headers}{'x-echo'} || '') eq '1';

    return map { /^([^:]*): ?(.*)$/ ? [$1, $2] : [$_, undef] }
           split /\n/, $r->{body};
}


# tests that a response came from the echo upstream with the identity of
# device DEV issued by SIGNER: 200, the four X-Device-* headers, once each
# (6 tests)

sub identity_ok {
    my ($self, $r, $name, $dev, $signer) = @_;

    Test::More::is($r->{status}, 200, "$name: 200")
        or Test::More::diag($r->{error} || $r->{raw} || $r->{out});
    Test::More::is_deeply([upstream_values($r, 'X-Device-Serial')],
                          [$self->serial($dev)], "$name: X-Device-Serial");
    Test::More::is_deeply([upstream_values($r, 'X-Device-Signer')],
                          [$self->fingerprint($signer)],
                          "$name: X-Device-Signer");
    Test::More::is_deeply([upstream_values($r, 'X-Device-Fingerprint')],
                          [$self->fingerprint($dev)],
                          "$name: X-Device-Fingerprint");
    Test::More::is_deeply([upstream_values($r, 'X-Device-Status')], ['ok'],
                          "$name: X-Device-Status");
    Test::More::is(scalar(grep { $_->[0] =~ /^x-device-/i }
                          upstream_headers($r)),
                   4, "$name: exactly 4 identity headers");
}


# values of one request header (any case) the echo upstream received

sub upstream_values {
    my ($r, $name) = @_;
    return map { $_->[1] } grep { lc $_->[0] eq lc $name } upstream_headers($r);
}


# The decision lines of an error log text (docs/directives.md,
# device_auth_log_level): one hash per "device_auth: device rejected: ..."
# or "device allowed: ..." line, oldest first, with its key=value fields
# (quoted values unescaped), "action" (rejected or allowed), "level"
# ([warn] ...) and "tail" (what follows the last field: nginx's ", client:
# ...").  Fields are read in order from the start of the message: a field
# forged inside a value cannot be read as one.

sub decision_lines {
    my ($log) = @_;
    my @lines;

    for my $line (split /\n/, $log) {
        next unless $line =~ /\[(\w+)\] .*?device_auth: device (rejected|allowed): (.*)$/;

        my ($level, $action, $rest) = ($1, $2, $3);
        my %f = (level => $level, action => $action);

        while ($rest =~ s/^ ?([a-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_.:-]+))//) {
            $f{$1} = defined $2 ? kv_unescape($2) : $3;
        }

        $f{tail} = $rest;
        push @lines, \%f;
    }

    return @lines;
}


# a quoted log value as it was: \" \\ \xNN

sub kv_unescape {
    my ($s) = @_;
    $s =~ s/\\(?:x([0-9a-fA-F]{2})|(.))/defined $1 ? chr(hex $1) : $2/ge;
    return $s;
}


# the key=value fields of a log message from its start (the start-up
# lines: "device_auth: server=... roots=..."): a hash

sub kv_fields {
    my ($rest) = @_;
    my %f;

    while ($rest =~ s/^ ?([a-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_.:-]+))//) {
        $f{$1} = defined $2 ? kv_unescape($2) : $3;
    }

    return \%f;
}


# curl (for HTTP/2): (exit code, stdout, stderr)

sub curl {
    my ($self, @args) = @_;
    my $err = "$self->{testdir}/curl.stderr";

    my ($rc, $out) = _capture_split($err, 'curl', '-sS', @args);

    return ($rc, $out, _slurp($err));
}


# runs "device-auth check": (exit code, output)

sub certcheck {
    my ($self, @args) = @_;
    return _capture($self->{cli}, 'check', @args);
}


# runs device-auth with these arguments: (exit code, stdout and stderr
# together)

sub device_auth {
    my ($self, @args) = @_;
    return _capture($self->{cli}, @args);
}


# the same, stdout and stderr apart: (exit code, stdout, stderr)

sub device_auth_split {
    my ($self, @args) = @_;
    my $err = "$self->{testdir}/device-auth.stderr";

    my ($rc, $out) = _capture_split($err, $self->{cli}, @args);

    return ($rc, $out, _slurp($err));
}


# capture(@cmd): runs a command without a shell, stdin from /dev/null:
# (exit code, stdout and stderr together)

sub capture { _capture(@_) }

sub _capture {
    my (@cmd) = @_;

    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        print "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }

    local $/;
    my $out = <$fh>;
    close $fh;

    return ($? >> 8, defined $out ? $out : '');
}


sub _capture_split {
    my ($errfile, @cmd) = @_;

    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>', $errfile;
        open STDIN, '<', '/dev/null';
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }

    local $/;
    my $out = <$fh>;
    close $fh;

    return ($? >> 8, defined $out ? $out : '');
}


sub _slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return '';
    binmode $fh;
    local $/;
    my $data = <$fh>;
    close $fh;
    return defined $data ? $data : '';
}


sub _slurp_line {
    my ($path) = @_;
    my $s = _slurp($path);
    die "cannot read $path" if $s eq '';
    chomp $s;
    return $s;
}


sub DESTROY { }


END {
    my $status = $?;

    for my $self (@INSTANCES) {
        next if $self->{pid} != $$;

        $self->stop();

        my $builder = Test::More->builder;

        # valgrind reports no check_error_log() saw (nginx -t runs, a file
        # that ended early) fail the file: a non-zero exit status
        if ($self->{valgrind}) {
            my @bad = $self->_valgrind_errors();
            if (@bad) {
                Test::More::diag(join "\n", 'valgrind found errors:', @bad);
                $status ||= 1;
            }
        }

        # so do sanitizer reports written while this file ran (the
        # processes are not all this file's: tests run one file at a time)
        if ($self->{san_logs}) {
            my @new = grep { !$self->{san_seen}{$_} } $self->_san_reports();
            if (@new) {
                Test::More::diag(join "\n", 'sanitizer reports:',
                                 map { "$_:\n" . _slurp($_) } @new);
                $status ||= 1;
            }
        }

        if (!$builder->is_passing) {
            my @log = split /\n/, $self->read_error_log();
            @log = @log[-30 .. -1] if @log > 30;
            Test::More::diag("error.log tail ($self->{testdir}):\n"
                             . join("\n", @log)) if @log;
        }

        if ($ENV{DEVICE_AUTH_TEST_LEAVE}) {
            Test::More::diag("test directory left: $self->{testdir}");
        } else {
            rmtree($self->{testdir});
        }
    }

    $? = $status;
}


1;
