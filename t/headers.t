#!/usr/bin/perl

# Forged identity headers: whatever a client sends under the prefix never
# reaches an upstream (or a variable), in device_auth on and off locations,
# in servers without device_auth at all, with underscores_in_headers, and
# with a custom device_auth_header_prefix; the identity headers appear
# exactly once.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test qw(upstream_values upstream_headers);

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        underscores_in_headers on;

        location /on {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }

        location /off {
            proxy_pass http://%%ECHO%%;
        }

        location /custom {
            device_auth on;
            device_auth_header_prefix X-Edge-Device-;
            proxy_pass http://%%ECHO%%;
        }

        location /var-on {
            device_auth on;
            return 200 "[$http_x_device_serial][$http_x_device_status][$http_x_device_other]\n";
        }

        location /var-off {
            return 200 "[$http_x_device_serial][$http_x_device_status][$http_x_device_other][$http_x_edge_device_serial]\n";
        }
    }

    # no device_auth at all, plain HTTP; underscores_in_headers off
    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            proxy_pass http://%%ECHO%%;
        }
    }

    # no device_auth at all, plain HTTP; underscores_in_headers on
    server {
        listen 127.0.0.1:%%PORT_2%%;
        underscores_in_headers on;

        location / {
            proxy_pass http://%%ECHO%%;
        }
    }

    # TLS, no device_auth in this server
    server {
        listen 127.0.0.1:%%PORT_3%% ssl;
        underscores_in_headers on;

        location / {
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

$t->run();

my @forged = (
    ['X-Device-Serial', '0123FFFFFFFFFFFF01'],
    ['x-device-serial', '0123FFFFFFFFFFFF02'],
    ['X-DEVICE-STATUS', 'ok'],
    ['X-Device-Signer', 'forged-signer'],
    ['X-Device-Fingerprint', 'forged-fingerprint'],
    ['X-Device-Other', 'forged-other'],
    ['X_Device_Serial', '0123FFFFFFFFFFFF03'],
    ['X-Device_Status', 'forged-mixed'],
    ['x_device-signer', 'forged-mixed2'],
    ['X-Edge-Device-Serial', '0123FFFFFFFFFFFF04'],
    ['X_Edge_Device_Status', 'forged-edge'],
);

# look-alikes that are not under a prefix: kept
my @kept = (
    ['X-Devices', 'kept-1'],
    ['X-Device', 'kept-2'],
    ['X-Real-Device-Serial', 'kept-3'],
    ['Device-Serial', 'kept-4'],
);

my $forged_values = qr/0123FFFFFFFFFFFF|forged/;

sub check_forged {
    my ($r, $name, %opts) = @_;
    my @h = upstream_headers($r);
    my $prefix = $opts{prefix} || 'X-Device-';

    is($r->{status}, 200, "$name: 200") or diag($r->{error} || $r->{raw});
    ok($r->{headers}{'x-echo'}, "$name: upstream reached");

    my @bad = grep { ($_->[1] || '') =~ $forged_values } @h;
    ok(!@bad, "$name: no forged value reached the upstream")
        or diag(explain \@bad);

    my @ours = grep { $_->[0] =~ /^x[-_](edge[-_])?device[-_]/i } @h;

    if ($opts{device}) {
        is_deeply([ sort map { $_->[0] } @ours ],
                  [ sort map { "$prefix$_" }
                    qw(Serial Signer Fingerprint Status) ],
                  "$name: only the 4 identity headers under the prefixes");
        is_deeply([upstream_values($r, "${prefix}Serial")],
                  [$t->serial($opts{device})], "$name: the real serial, once");
        is_deeply([upstream_values($r, "${prefix}Status")], ['ok'],
                  "$name: status ok, once");
    } else {
        ok(!@ours, "$name: no header under the prefixes")
            or diag(explain \@ours);
    }

    for my $k (@kept) {
        next if $k->[0] =~ /_/ && !$opts{underscores};
        is_deeply([upstream_values($r, $k->[0])], [$k->[1]],
                  "$name: $k->[0] kept");
    }
}

my $mark = $t->log_mark();

my $r = $t->https_get(path => '/on', device => 'dev1',
                      headers => [@forged, @kept]);
check_forged($r, 'device_auth on', device => 'dev1', underscores => 1);

my $log = $t->read_error_log($mark);
for my $h (@forged) {
    like($log, qr/\[info\] [^\n]*device_auth: removed client header "\Q$h->[0]\E"/,
         "removal of $h->[0] logged");
}

$r = $t->https_get(path => '/on', device => 'dev3',
                   headers => [@forged, @kept], ssl_version => 'TLSv1_2');
check_forged($r, 'device_auth on, TLS 1.2, dev3', device => 'dev3',
             underscores => 1);
is_deeply([upstream_values($r, 'X-Device-Signer')],
          [$t->fingerprint('signer2')], 'dev3: real signer');

$r = $t->https_get(path => '/on', device => 'dev_expired',
                   headers => [@forged]);
is($r->{status}, 400, 'device_auth on, invalid device: 400');
ok(!$r->{headers}{'x-echo'}, 'device_auth on, invalid device: no upstream');

$r = $t->https_get(path => '/off', device => 'dev1', headers => [@forged, @kept]);
check_forged($r, 'device_auth off, device', underscores => 1);

$r = $t->https_get(path => '/off', headers => [@forged, @kept]);
check_forged($r, 'device_auth off, no certificate', underscores => 1);

$r = $t->https_get(path => '/off', device => 'dev_p384',
                   headers => [@forged, @kept]);
check_forged($r, 'device_auth off, invalid device', underscores => 1);

$r = $t->https_get(path => '/custom', device => 'dev1',
                   headers => [@forged, @kept]);
check_forged($r, 'custom prefix', device => 'dev1', prefix => 'X-Edge-Device-',
             underscores => 1);
ok(!grep({ $_->[0] =~ /^x-device-/i } upstream_headers($r)),
   'custom prefix: nothing under the default prefix');

$r = $t->http_get(port => $t->port(1), headers => [@forged, @kept]);
check_forged($r, 'server without device_auth, plain HTTP');

$r = $t->http_get(port => $t->port(2), headers => [@forged, @kept]);
check_forged($r, 'server without device_auth, underscores_in_headers on',
             underscores => 1);

$r = $t->https_get(port => $t->port(3), device => 'dev1',
                   headers => [@forged, @kept]);
check_forged($r, 'TLS server without device_auth', underscores => 1);

# forged headers on a keepalive connection, every request

$r = $t->https_get(path => '/on', device => 'dev2', keepalive => 10,
                   headers => [@forged]);
is(scalar(grep { $_->{status} == 200
                 && join(',', upstream_values($_, 'X-Device-Serial'))
                    eq $t->serial('dev2')
                 && !grep { ($_->[1] || '') =~ $forged_values }
                    upstream_headers($_) } @{ $r->{responses} }),
   10, 'keepalive: 10 requests, forged headers removed from each');

# what variables see

$r = $t->https_get(path => '/var-off', device => 'dev1',
                   headers => [@forged]);
is($r->{body}, "[][][][]\n", 'variables do not see forged headers');

$r = $t->https_get(path => '/var-on', device => 'dev1', headers => [@forged]);
is($r->{body}, '[' . $t->serial('dev1') . "][ok][]\n",
   '$http_x_device_* are the identity in a device_auth location');

# a forged header alone (the only header besides Host)

$r = $t->http_get(port => $t->port(1),
                  headers => [['X-Device-Serial', '0123FFFFFFFFFFFF09']]);
is($r->{status}, 200, 'only a forged header: 200');
ok(!grep({ $_->[0] =~ /^x-device-/i } upstream_headers($r)),
   'only a forged header: removed');

# many headers, the forged ones spread over several list parts

my @many = map { ["X-Filler-$_", "v$_"] } 1 .. 40;
splice @many, 5 * $_, 0, ['X-Device-Serial', "0123FFFFFFFFFFFF1$_"] for 0 .. 7;
$r = $t->http_get(port => $t->port(1), headers => \@many);
is($r->{status}, 200, 'many headers: 200');
ok(!grep({ $_->[0] =~ /^x-device-/i } upstream_headers($r)),
   'many headers: every forged one removed');
is(scalar(grep { $_->[0] =~ /^X-Filler-/ } upstream_headers($r)), 40,
   'many headers: the others kept, in order');
is_deeply([ map { $_->[0] } grep { $_->[0] =~ /^X-Filler-/ }
            upstream_headers($r) ],
          [ map { "X-Filler-$_" } 1 .. 40 ], 'many headers: order kept');

$t->check_error_log();

done_testing();
