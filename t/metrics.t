#!/usr/bin/perl

# device_auth_metrics: certificate errors by reason, decisions, forged
# headers, the sum over workers, counters kept across a reload, methods.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
worker_processes 2;

http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        location / {
            device_auth on;
            return 200 "ok\n";
        }

        location /pinned/ {
            device_auth on;
            return 200 "ok\n";
        }

        location = /metrics {
            device_auth_metrics;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        server_name localhost;

        device_auth_signers %%PKI%%/signers.pem;

        location / {
            device_auth on;
            return 200 "ok\n";
        }
    }
}
EOF

$t->run();

sub scrape {
    my $r = $t->https_get(path => '/metrics');
    return { map { /^(\S+) (\S+)$/ ? ($1 => $2) : () }
             split /\n/, $r->{body} };
}

sub dec { "nginx_device_auth_decisions_total{result=\"$_[0]\",reason=\"$_[1]\"}" }
sub cert { "nginx_device_auth_cert_errors_total{reason=\"$_[0]\"}" }

my $m0 = scrape();

# spread over several connections, so both workers may take some

$t->https_get(device => 'dev1') for 1 .. 6;
$t->https_get() for 1 .. 2;
$t->https_get(device => 'dev_p384');
$t->https_get(device => 'dev_expired');
$t->https_get(device => 'dev_badcn');
$t->https_get(device => 'dev_rogue');
$t->https_get(port => $t->port(1), device => 'dev_unpinned_signer',
              leaf_only => 1);
$t->https_get(device => 'dev1', headers => [['X-Device-Serial', 'forged'],
                                            ['x-device-status', 'ok']]);

my $m = scrape();

sub delta { ($m->{$_[0]} // 0) - ($m0->{$_[0]} // 0) }

is(delta(dec('allowed', 'ok')), 7, 'decisions: 7 allowed ok');
is(delta(dec('rejected', 'no_cert')), 2, 'decisions: 2 without a certificate');
is(delta(dec('rejected', 'invalid')), 5, 'decisions: 5 invalid certificates');
is(delta(cert('curve')), 1, 'cert errors: curve');
is(delta(cert('expired')), 1, 'cert errors: expired');
is(delta(cert('subject')), 1, 'cert errors: subject');
is(delta(cert('unpinned_root')), 1, 'cert errors: unpinned root');
is(delta(cert('signer_not_pinned')), 1, 'cert errors: signer not pinned');
is(delta('nginx_device_auth_forged_headers_total'), 2,
   'forged headers removed: 2');

# a reload keeps the counters (a new zone of the same name and size)

SKIP: {
    skip 'reload needs the master process (nginx runs alone under valgrind)',
         2 if $t->valgrind;

    ok($t->reload(), 'reload');
    my $m2 = scrape();
    is($m2->{ dec('allowed', 'ok') }, $m->{ dec('allowed', 'ok') },
       'counters kept across a reload');
}

# methods

my $r = $t->https_get(path => '/metrics', method => 'POST', body => 'x');
is($r->{status}, 405, 'POST: 405');
$r = $t->https_get(path => '/metrics', method => 'HEAD');
is($r->{status}, 200, 'HEAD: 200');
is($r->{body}, '', 'HEAD: no body');

$t->check_error_log();

done_testing();
