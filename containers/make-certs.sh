#!/usr/bin/env bash
# make-certs.sh DIR [N]: a certificate authority and certificates for a
# Corral ensemble of N members (default 3) in DIR, made with openssl:
#
#   ca.pem                 the authority clients and members trust
#   server.<id>.pem        member <id>'s chain and key: CN=server.<id>, names
#                          corral<id>, localhost and 127.0.0.1
#   client.pem, client.key a client's certificate (CN=client)
#
# For trying TLS out and for tests. Keys are readable by the container's user
# (uid 10001); in production use your own authority and keep keys 0600,
# owned by that user.
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR [N]}
n=${2:-3}
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 825 -subj "/O=Corral/CN=Corral ensemble CA" -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
issue() {  # issue NAME CN SANS
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/O=Corral/CN=$2" -out "$1.csr" ${3:+-addext "subjectAltName=$3"} \
    -addext "extendedKeyUsage=serverAuth,clientAuth"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -sha256 \
    -copy_extensions copy -out "$1.crt" 2>/dev/null
  rm -f "$1.csr"
}
for i in $(seq 1 "$n"); do
  issue "server.$i" "server.$i" "DNS:corral$i,DNS:server.$i,DNS:localhost,IP:127.0.0.1"
  cat "server.$i.crt" "server.$i.key" > "server.$i.pem"
  rm -f "server.$i.crt" "server.$i.key"
done
issue client client ""
mv client.crt client.pem
chmod 644 ./*.pem client.key
chmod 600 ca.key
echo "made ca.pem, server.1..$n.pem and client.pem/client.key in $dir"
