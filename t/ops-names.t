#!/usr/bin/perl

# One name per decision (issue 15, section 5): each decision is made once
# here, and the name it goes by is compared across $device_auth_status,
# the status= field of its log line, the reason label of the metric it
# increments, and the type of the event it writes.  Every decision series
# is listed from 0, so that increase() sees the first one.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use DeviceAuth::Test qw(decision_lines cert_fingerprint);
use DeviceAuth::Manifest;

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;
    device_auth_log_interval 0;
    device_auth_location $http_x_place;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name a.example;

        device_auth_certificate %%PKI%%/roots.pem;

        add_header X-Status $device_auth_status always;

        location / {
            device_auth on;
            device_auth_grace 0;
            return 200 "$device_auth_status\n";
        }

        location /registry {
            device_auth on;
            device_auth_registry on;
            return 200 "$device_auth_status\n";
        }

        location /bound {
            device_auth on;
            device_auth_key_binding always;
            return 200 "$device_auth_status\n";
        }

        location /deny {
            device_auth on;
            device_auth_duplicate_limit 1;
            device_auth_duplicate_action deny;
            return 200 "$device_auth_status\n";
        }

        location /log {
            device_auth on;
            device_auth_duplicate_limit 1;
            return 200 "$device_auth_status\n";
        }

        location /open {
            device_auth on;
            device_auth_grace 0;
            device_auth_fail_mode open;
            return 200 "$device_auth_status\n";
        }

        location = /metrics {
            device_auth_metrics;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name b.example;

        device_auth_certificate %%PKI%%/root2.pem;

        add_header X-Status $device_auth_status always;

        location / {
            device_auth on;
            return 200 "$device_auth_status\n";
        }
    }
}
EOF

$t->redis_start();
$t->run();

my $P = 'device_auth:';
my $signer = $t->fingerprint('signer1');
my $n = 0;

sub device {
    my $serial = sprintf('0123AE%012X', ++$n);
    return $t->make_device(name => "n$n", serial => $serial);
}

sub sn { $t->serial($_[0]) }

sub scrape {
    my $r = $t->https_get(path => '/metrics', sni => 'a.example',
                          host => 'a.example');
    return { map { /^(\S+) (\S+)$/ ? ($1 => $2) : () }
             split /\n/, $r->{body} };
}

sub events {
    my (@ev, $cur);
    for my $l ($t->redis_cli('--raw', 'XRANGE', "${P}events", '-', '+')) {
        if ($l =~ /^\d+-\d+$/) { push @ev, $cur = { id => $l }; next }
        next unless $cur;
        if (!exists $cur->{_k}) { $cur->{_k} = $l; next }
        $cur->{ delete $cur->{_k} } = $l;
    }
    return @ev;
}

my %results = (
    ok => ['allowed'], unchecked => ['allowed'],
    duplicate => ['allowed', 'rejected'],
    map { $_ => ['rejected'] }
        qw(no_cert invalid misdirected revoked signer_revoked
           signer_compromised unregistered key_mismatch quarantined error
           too_early)
);

###############################################################################
# every series from 0

my $m0 = scrape();
my @series = grep { /^nginx_device_auth_decisions_total\{/ } keys %$m0;

is_deeply([sort @series],
          [sort map { my $d = $_; map { "nginx_device_auth_decisions_total{result=\"$_\",reason=\"$d\"}" } @{ $results{$d} } } keys %results],
          'every decision listed before any happened, with its results');
is(scalar(grep { $m0->{$_} != 0 } @series), 0, 'all at 0');

###############################################################################
# each decision once: its names everywhere

# name => [how to make it (returns the HTTP status), its event]
my $twin = device();
my $compromised = device();
my $keyed = device();
my $clone_d = device();
my $clone_l = device();
my $unreg = device();

$t->redis_cli('SET', "$P\{${\ sn($keyed)}}:registered",
              'spki_sha256=' . ('0' x 64));

my @cases = (
    [ok => sub { get(device => 'dev1') }, 200, undef],
    [no_cert => sub { get() }, 400, undef],
    [invalid => sub { get(device => 'dev_expired') }, 400, undef],
    [misdirected => sub { get(device => 'dev1', host => 'b.example') },
     421, undef],
    [revoked => sub {
        $t->redis_cli('SET', "$P\{${\ sn('dev2')}}:revoked", 'stolen');
        get(device => 'dev2') }, 403, 'revoked'],
    [quarantined => sub {
        $t->redis_cli('SET', "$P\{${\ sn('dev3')}}:revoked", 'quarantined: x');
        get(device => 'dev3') }, 403, 'quarantined'],
    [unregistered => sub { get(device => $unreg, path => '/registry') },
     403, 'unregistered'],
    [key_mismatch => sub { get(device => $keyed, path => '/bound') },
     403, 'key_mismatch'],
    [duplicate => sub {
        get(device => $clone_d, path => '/deny', place => 'x1');
        get(device => $clone_d, path => '/deny', place => 'x2') },
     403, 'duplicate'],
    [duplicate => sub {
        get(device => $clone_l, path => '/log', place => 'y1');
        get(device => $clone_l, path => '/log', place => 'y2') },
     200, 'duplicate'],
    [signer_compromised => sub {
        $t->redis_cli('SET', "${P}signer:$signer:compromised", 'leaked');
        my $s = get(device => $compromised);
        $t->redis_cli('DEL', "${P}signer:$signer:compromised");
        $s }, 403, 'signer_compromised'],
    [signer_revoked => sub {
        $t->redis_cli('SET', "${P}signer:$signer:revoked", 'retired');
        my $s = get(device => $twin);
        $t->redis_cli('DEL', "${P}signer:$signer:revoked");
        $s }, 403, 'signer_revoked'],
    [error => sub {
        $t->redis_stop();
        my $s = get(device => device());
        $s }, 503, undef],
    [unchecked => sub {
        my $s = get(device => device(), path => '/open');
        $t->redis_start();
        $s }, 200, undef],
);

my $status;

sub get {
    my (%a) = @_;
    my $place = delete $a{place};
    my $host = delete $a{host} || 'a.example';
    my $r = $t->https_get(%a, sni => 'a.example', host => $host,
                          headers => [['X-Place', $place // 'p']]);
    $status = $r->{headers}{'x-status'};
    return $r->{status} || 0;
}

my %seen;

for my $c (@cases) {
    my ($name, $make, $code, $event) = @$c;

    my $m = scrape();
    my $mark = $t->log_mark();
    my @ev = $event ? events() : ();

    is($make->(), $code, "$name: HTTP $code");

    is($status, $name, "$name: \$device_auth_status");

    my $result = $code == 200 || ($name eq 'unchecked') ? 'allowed'
                                                        : 'rejected';
    my $series = "nginx_device_auth_decisions_total{result=\"$result\",reason=\"$name\"}";
    my $m2;
    my $end = time() + 5;
    do { $m2 = scrape() } until ($m2->{$series} // 0) > ($m->{$series} // 0)
                                || time() > $end;
    is(($m2->{$series} // 0) - ($m->{$series} // 0), 1,
       "$name: the metric labelled reason=\"$name\", $result");

    unless ($name eq 'ok') {
        my @l;
        $end = time() + 5;
        until ((@l = grep { $_->{status} eq $name }
                     decision_lines($t->read_error_log($mark)))
               || time() > $end)
        {
            sleep(0.02);
        }
        is(scalar @l, 1, "$name: its log line says status=$name");
    }

    if ($event) {
        my @new;
        $end = time() + 5;
        until ((@new = grep { my $e = $_; !grep { $_->{id} eq $e->{id} } @ev }
                       events())
               || time() > $end)
        {
            sleep(0.02);
        }
        is(join(' ', map { $_->{type} } @new), $name,
           "$name: the event's type");
    }

    $seen{$name}++;
}

$t->redis_cli('DEL', map { "$P\{${\ sn($_)}}:revoked" } qw(dev2 dev3));

# every decision but too_early (t/early-data.t) was made here
is_deeply([sort keys %seen], [sort grep { $_ ne 'too_early' } keys %results],
          'every decision was made once');

$t->check_error_log();

done_testing();
