#!/usr/bin/perl

# HTTP/2: several streams on one TLS connection (curl --parallel), each
# with the device identity; forged headers removed; no certificate and a
# bad certificate refused on every stream.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_log_interval 0;    # a line for every decision

    log_format h2 '$request_uri $status $connection $connection_requests '
                  '$http2 $device_auth_status $device_auth_serial';

    server {
        listen 127.0.0.1:%%PORT_0%% ssl http2;
        server_name localhost;

        access_log %%TESTDIR%%/h2.log h2;

        proxy_set_header X-Conn $connection;
        proxy_set_header X-H2 $http2;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }

        location /off {
            proxy_pass http://%%ECHO%%;
        }

        location /return {
            device_auth on;
            return 200 "serial=$device_auth_serial status=$device_auth_status conn=$connection\n";
        }
    }
}
EOF

$t->run();

my $port = $t->port(0);
my $n = 0;

# parallel transfers: (status, http_version, num_connects, body) each

sub h2 {
    my ($dev, $paths, @extra) = @_;
    my (@args, @files);

    for my $p (@$paths) {
        my $f = $t->testdir . '/h2-' . ++$n;
        push @files, $f;
        push @args, '-o', $f, "https://localhost:$port$p";
    }

    my ($rc, $out, $err) = $t->curl(
        '--http2', '-k', '--parallel', '--parallel-max', '10',
        '--resolve', "localhost:$port:127.0.0.1",
        '-w', '%{http_code} %{http_version} %{num_connects}\n',
        $dev ? ('--cert', $t->pki_file("$dev.chain.pem"),
                '--key', $t->pki_file("$dev.key")) : (),
        @extra, @args);

    diag("curl exit $rc: $err") if $rc;

    # --parallel writes the lines in completion order: sort the results
    my @lines = split /\n/, $out;
    my @bodies = map { $t->read_file($_) } @files;

    return (\@lines, \@bodies);
}

sub values_of {
    my ($body, $name) = @_;
    return map { /^\Q$name\E: (.*)$/i ? $1 : () } split /\n/, $body;
}

my $serial = $t->serial('dev1');

for my $v (['--tlsv1.2', '--tls-max', '1.2'], ['--tlsv1.3']) {
    my $name = "HTTP/2 $v->[0]";
    my @paths = map { "/stream$_" } 1 .. 10;

    my ($lines, $bodies) = h2('dev1', \@paths, @$v,
                              '-H', 'X-Device-Serial: 0123FFFFFFFFFFFF01',
                              '-H', 'x-device-status: forged');

    is(scalar @$lines, 10, "$name: 10 transfers");
    is(scalar(grep { /^200 2 / } @$lines), 10, "$name: 10 x 200 over HTTP/2");

    my $connects = 0;
    $connects += (split / /)[2] for @$lines;
    is($connects, 1, "$name: one TLS connection for all streams");

    my %conn = map { join(',', values_of($_, 'X-Conn')) => 1 } @$bodies;
    is(scalar keys %conn, 1, "$name: the same nginx connection for all");
    is(scalar(grep { join(',', values_of($_, 'X-H2')) eq 'h2' } @$bodies),
       10, "$name: \$http2 is h2 on every stream");

    is(scalar(grep { join(',', values_of($_, 'X-Device-Serial')) eq $serial }
              @$bodies), 10, "$name: every stream, the serial once");
    is(scalar(grep { join(',', values_of($_, 'X-Device-Status')) eq 'ok' }
              @$bodies), 10, "$name: every stream, status ok once");
    is(scalar(grep { join(',', values_of($_, 'X-Device-Signer'))
                     eq $t->fingerprint('signer1') } @$bodies),
       10, "$name: every stream, the signer once");
    is(scalar(grep { /0123FFFFFFFFFFFF|forged/ } @$bodies), 0,
       "$name: forged headers removed on every stream");
}

# device_auth on and off, and return, as streams of one connection

{
    my @paths = (('/mixed', '/off/mixed', '/return') x 3);
    my ($lines, $bodies) = h2('dev2', \@paths);

    is(scalar(grep { /^200 2 / } @$lines), 9, 'mixed streams: 9 x 200');
    my $connects = 0;
    $connects += (split / /)[2] for @$lines;
    is($connects, 1, 'mixed streams: one connection');

    my @on = @$bodies[0, 3, 6];
    my @off = @$bodies[1, 4, 7];
    my @ret = @$bodies[2, 5, 8];

    is(scalar(grep { join(',', values_of($_, 'X-Device-Serial'))
                     eq $t->serial('dev2') } @on), 3,
       'mixed streams: identity where device_auth is on');
    is(scalar(grep { /^X-Device-/mi } @off), 0,
       'mixed streams: no identity where device_auth is off');
    is(scalar(grep { /^serial=\Q${\$t->serial('dev2')}\E status=ok conn=\d+$/m }
              @ret), 3, 'mixed streams: return with the variables');
}

# no certificate, bad certificate: every stream refused

{
    my ($lines, $bodies) = h2(undef, [map { "/nocert$_" } 1 .. 5]);
    is(scalar(grep { /^400 2 / } @$lines), 5, 'no certificate: 5 x 400');
    is(scalar(grep { /No required SSL certificate was sent/ } @$bodies), 5,
       'no certificate: the 496 body on every stream');
}

{
    my ($lines, $bodies) = h2('dev_p384', [map { "/bad$_" } 1 .. 5]);
    is(scalar(grep { /^400 2 / } @$lines), 5, 'bad certificate: 5 x 400');
    is(scalar(grep { /The SSL certificate error/ } @$bodies), 5,
       'bad certificate: the 495 body on every stream');
}

# the access log: HTTP/2 streams of one connection, the serial on each

# (written when a stream ends, which may be just after curl saw it end)

my @stream_lines;

for (1 .. 100) {
    @stream_lines = grep { m{^/stream\d+ 200 \d+ \d+ h2 ok \Q$serial\E$} }
                    split /\n/, $t->read_file('h2.log');
    last if @stream_lines >= 20;
    select undef, undef, undef, 0.03;
}

is(scalar @stream_lines, 20, 'access log: 20 streams with status and serial');

my %per_conn;
for (@stream_lines) {
    my (undef, undef, $c, $req) = split / /;
    push @{ $per_conn{$c} }, $req;
}
is_deeply([ map { [ sort { $a <=> $b } @$_ ] } values %per_conn ],
          [ [1 .. 10], [1 .. 10] ],
          'access log: 2 connections, requests 1 to 10 on each');

my $log;

$log = $t->read_error_log();
is(scalar(() = $log =~ /device rejected: code=496 status=no_cert /g), 5,
   'error.log: 5 streams refused without certificate');
is(scalar(() = $log =~ /device rejected: code=495 status=invalid [^\n]*curve secp384r1/g),
   5, 'error.log: 5 streams refused for the curve');

$t->check_error_log();

done_testing();
