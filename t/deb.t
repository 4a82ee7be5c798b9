#!/usr/bin/perl

# The Debian package (make test-deb): "apt-get install ./....deb" into the
# stock Debian nginx, then
#   - the files where Debian's nginx expects them: the module under
#     /usr/lib/nginx/modules, mod-http-device-auth.conf in
#     /usr/share/nginx/modules-available, linked from
#     /etc/nginx/modules-enabled; a dependency on the nginx ABI that the
#     installed nginx provides;
#   - /usr/bin/device-auth (and its manual page) checks certificates;
#   - the stock configuration (/etc/nginx/nginx.conf, which includes every
#     enabled module) still passes "nginx -t" with the module loaded;
#   - /usr/sbin/nginx, loading the module through the package's snippet in
#     /etc/nginx/modules-enabled (nothing from the checkout), serves a
#     device_auth server: a genuine device gets through with its identity,
#     a foreign device is refused, a device revoked in Redis gets 403;
# and the package is purged again, leaving /etc/nginx/modules-enabled as it
# was.  The test's own nginx runs from its test directory (its pid, logs,
# ports), never the machine's nginx service or its port 80.
#
# Root only (it installs a package); skipped when another version of the
# package is installed on this machine (it is not replaced).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Cwd qw(abs_path);
use Test::More;
use DeviceAuth::Test qw(capture);

$ENV{DEBIAN_FRONTEND} = 'noninteractive';

my $PKG = 'libnginx-mod-http-device-auth';
my $SO = '/usr/lib/nginx/modules/ngx_http_device_auth_module.so';
my $AVAILABLE = '/usr/share/nginx/modules-available/mod-http-device-auth.conf';
my $ENABLED = '/etc/nginx/modules-enabled/50-mod-http-device-auth.conf';

plan(skip_all => 'DEVICE_AUTH_DEB is not set: "make test-deb" builds the'
                 . ' package and runs this file')
    unless $ENV{DEVICE_AUTH_DEB};
plan(skip_all => 'not root: installing a package needs root')
    unless $> == 0;

my $deb = abs_path($ENV{DEVICE_AUTH_DEB});
die "no package file $ENV{DEVICE_AUTH_DEB}\n" unless $deb && -f $deb;

plan(skip_all => "Debian's nginx is not installed (make deps installs it)")
    unless installed_version('nginx') && -x '/usr/sbin/nginx';

my $version = run_out('dpkg-deb', '-f', $deb, 'Version');
chomp $version;

my $before = installed_version($PKG);

plan(skip_all => "$PKG $before is installed on this machine: not replacing"
                 . " it with $version")
    if $before && $before ne $version;

my @enabled_before = enabled_modules();
my ($stock_ok_before) = stock_test();

# the machine's state is restored however the file ends, once the package
# is installed (not when a skip ends the file earlier)

my $installing = 0;

sub restore {
    return unless $installing;
    $installing = 0;
    return if $before;
    run_cmd('apt-get', 'purge', '-y', '-q', '-o', 'DPkg::Lock::Timeout=300',
            $PKG);
}

END {
    local $?;
    restore();
}

$SIG{INT} = $SIG{TERM} = sub { restore(); exit 1 };

###############################################################################
# install

$installing = 1;

my ($rc, $out) = run_cmd('apt-get', 'install', '-y', '-q',
                         '--no-install-recommends',
                         '-o', 'DPkg::Lock::Timeout=300', $deb);
is($rc, 0, "apt-get install $deb") or diag($out);

is(installed_version($PKG), $version, "$PKG $version installed");

ok(-f $SO, "module in $SO");
is(read_text($AVAILABLE),
   "load_module modules/ngx_http_device_auth_module.so;\n",
   'mod-http-device-auth.conf loads the module');
is(readlink($ENABLED), $AVAILABLE,
   "$ENABLED links to the snippet");

# the ABI: what the package depends on is what the installed nginx provides

my $depends = run_out('dpkg-query', '-W', '-f=${Depends}', $PKG);
my ($abi) = $depends =~ /\b(nginx-abi-[\w.+~-]+)/;
ok($abi, "depends on an nginx ABI: $depends");
my $provides = run_out('dpkg-query', '-W', '-f=${Provides}', 'nginx');
like($provides, qr/(?:^|[\s,])\Q$abi\E(?:$|[\s,])/,
     "the installed nginx provides $abi");

# the device-auth tool of the package

my $CLI = '/usr/bin/device-auth';
ok(-x $CLI, "$CLI installed");
ok(-f '/usr/share/man/man1/device-auth.1.gz', 'its manual page');

my $pki = $ENV{DEVICE_AUTH_PKI} || '';

SKIP: {
    skip 'DEVICE_AUTH_PKI not set', 2 unless -d $pki;

    my ($rc, $out) = run_cmd($CLI, 'check', '-r', "$pki/roots.pem",
                             "$pki/dev1.chain.pem");
    is($rc, 0, 'device-auth check: a genuine device passes');
    ($rc, $out) = run_cmd($CLI, 'check', '-r', "$pki/roots.pem",
                          "$pki/dev_rogue.chain.pem");
    like("$rc $out", qr/^1 invalid .*not? .*pinned root/,
         'device-auth check: a foreign device does not');
}

SKIP: {
    skip 'the stock configuration failed "nginx -t" before the package', 1
        unless $stock_ok_before;

    my ($ok, $msg) = stock_test();
    ok($ok, 'stock /etc/nginx/nginx.conf with the module: nginx -t')
        or diag($msg);
}

###############################################################################
# the packaged module in Debian's nginx, through the package's snippet

# the prefix of Debian's nginx (--prefix=/usr/share/nginx), against which
# the snippet's "modules/ngx_http_device_auth_module.so" resolves
my $t = DeviceAuth::Test->new(prefix => '/usr/share/nginx/');

$t->write_conf(<<"EOF", no_module => 1);
include $ENABLED;

events {
}

http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

$t->redis_start();
$t->run();

like(run_out('readlink', '-f', "/proc/" . $t->nginx_pid . "/exe"),
     qr{^/usr/sbin/nginx$}, 'the nginx running is /usr/sbin/nginx');
like(read_text("/proc/" . worker_pid($t) . "/maps"),
     qr{\Q$SO\E}, "its worker maps $SO");

my $r = $t->https_get(device => 'dev1', path => '/genuine');
$t->identity_ok($r, 'packaged module, genuine device', 'dev1', 'signer1');

$r = $t->https_get(device => 'dev_rogue', path => '/foreign');
is($r->{status}, 400, 'packaged module, foreign device: 400');
ok(!$r->{headers}{'x-echo'}, 'packaged module, foreign device: refused');

$t->redis_cli('SET', 'device_auth:{' . $t->serial('dev2') . '}:revoked',
              'stolen');
$r = $t->https_get(device => 'dev2', path => '/revoked');
is($r->{status}, 403, 'packaged module, revoked device: 403');

$t->check_error_log();

###############################################################################
# removal

SKIP: {
    skip "$PKG $before was installed before the test: kept", 3 if $before;

    restore();

    is(installed_version($PKG), '', "$PKG purged");
    ok(!-e $SO && !-l $ENABLED && !-e $CLI, 'module, link and tool gone');
    is_deeply([enabled_modules()], \@enabled_before,
              '/etc/nginx/modules-enabled as before the test');
}

done_testing();

###############################################################################

sub installed_version {
    my ($pkg) = @_;
    my $st = run_out('dpkg-query', '-W', '-f=${db:Status-Status} ${Version}',
                     $pkg);
    return $st =~ /^installed (\S+)/ ? $1 : '';
}

sub enabled_modules {
    opendir(my $d, '/etc/nginx/modules-enabled') or return ();
    return sort grep { !/^\./ } readdir $d;
}

# "nginx -t" of the machine's own configuration: (ok, output)

sub stock_test {
    return (0, 'no /etc/nginx/nginx.conf') unless -f '/etc/nginx/nginx.conf';
    my ($rc, $out) = run_cmd('/usr/sbin/nginx', '-t', '-q');
    return ($rc == 0, $out);
}

sub worker_pid {
    my ($t) = @_;
    my $master = $t->nginx_pid;
    my $kids = read_text("/proc/$master/task/$master/children");
    my ($pid) = $kids =~ /(\d+)/;
    return $pid || $master;
}

sub read_text {
    my ($file) = @_;
    open(my $fh, '<', $file) or return '';
    local $/;
    return scalar <$fh>;
}

sub run_cmd { capture(@_) }

sub run_out {
    my (undef, $out) = run_cmd(@_);
    return $out;
}
