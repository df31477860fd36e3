#!/usr/bin/env bash
# OpenLDAP's command-line clients against a live gatehouse (started by run.sh, which
# exports LDAP_URL, LDAPS_URL, LDAP_BASE, LDAP_CA, LDAP_PASSWORD, LDAP_KEY_ID,
# LDAP_KEY_SECRET). Each check runs a real client and asserts its exit code (the LDAP
# result code) and output.
set -uo pipefail

passed=0
failed=0
people="ou=people,$LDAP_BASE"
groups="ou=groups,$LDAP_BASE"
service="cn=$LDAP_KEY_ID,ou=services,$LDAP_BASE"
export LDAPTLS_CACERT="$LDAP_CA" LDAPTLS_REQCERT=demand

# expect NAME RC PATTERN -- COMMAND...: the command exits RC and, unless PATTERN is
# empty, prints a line matching it (grep -E).
expect() {
  local name=$1 want_rc=$2 pattern=$3
  shift 4
  local out rc
  out="$("$@" 2>&1)"
  rc=$?
  if [[ $rc -ne $want_rc ]]; then
    echo "FAIL $name: exit $rc, expected $want_rc"
    echo "$out" | head -20 | sed 's/^/    /'
    failed=$((failed + 1))
    return
  fi
  if [[ -n "$pattern" ]] && ! grep -Eq -- "$pattern" <<<"$out"; then
    echo "FAIL $name: no line matches /$pattern/"
    echo "$out" | head -20 | sed 's/^/    /'
    failed=$((failed + 1))
    return
  fi
  echo "ok   $name"
  passed=$((passed + 1))
}

# count NAME WANT -- COMMAND...: the command succeeds and prints WANT entries.
count() {
  local name=$1 want=$2
  shift 3
  local out rc n
  out="$("$@" 2>&1)"
  rc=$?
  n="$(grep -c '^dn: ' <<<"$out")"
  if [[ $rc -ne 0 || "$n" != "$want" ]]; then
    echo "FAIL $name: exit $rc, $n entries, expected 0 and $want"
    echo "$out" | tail -5 | sed 's/^/    /'
    failed=$((failed + 1))
    return
  fi
  echo "ok   $name"
  passed=$((passed + 1))
}

as_user() { local u=$1; shift; "$@" -x -H "$LDAP_URL" -D "uid=$u,$people" -w "$LDAP_PASSWORD"; }
as_key() { "$@" -x -H "$LDAP_URL" -D "$service" -w "$LDAP_KEY_SECRET"; }

# --- the root DSE and anonymous clients
expect "anonymous reads the root DSE" 0 "^namingContexts: $LDAP_BASE$" -- \
  ldapsearch -x -LLL -H "$LDAP_URL" -b "" -s base "(objectClass=*)" namingContexts supportedControl
expect "the root DSE lists the paged-results control" 0 "^supportedControl: 1.2.840.113556.1.4.319$" -- \
  ldapsearch -x -LLL -H "$LDAP_URL" -b "" -s base "(objectClass=*)" +
expect "anonymous may not search the tree" 50 "" -- \
  ldapsearch -x -LLL -H "$LDAP_URL" -b "$LDAP_BASE" "(uid=alice)"
expect "the subschema entry lists inetOrgPerson" 0 "NAME 'inetOrgPerson'" -- \
  as_user alice ldapsearch -LLL -b "cn=Subschema" -s base "(objectClass=subschema)" objectClasses

# --- binds, through the password grant's rules
expect "ldapwhoami as a user" 0 "^dn:uid=alice,$people$" -- as_user alice ldapwhoami
expect "a bind by email" 0 "^dn:uid=alice,$people$" -- \
  ldapwhoami -x -H "$LDAP_URL" -D "alice@example.com" -w "$LDAP_PASSWORD"
expect "a bind DN in other case" 0 "^dn:uid=alice,$people$" -- \
  ldapwhoami -x -H "$LDAP_URL" -D "UID=Alice,OU=People,DC=Example,DC=com" -w "$LDAP_PASSWORD"
expect "a wrong password is invalidCredentials" 49 "" -- \
  ldapwhoami -x -H "$LDAP_URL" -D "uid=alice,$people" -w "wrong-password"
expect "an unknown user is invalidCredentials" 49 "" -- \
  ldapwhoami -x -H "$LDAP_URL" -D "uid=nobody,$people" -w "$LDAP_PASSWORD"
expect "a suspended user is refused" 49 "" -- as_user bob ldapwhoami
expect "an unauthenticated bind (DN, no password) is refused" 53 "" -- \
  ldapwhoami -x -H "$LDAP_URL" -D "uid=alice,$people" -w ""
expect "an API key binds as its service account" 0 "^dn:$service$" -- as_key ldapwhoami
expect "an API key with a wrong secret is refused" 49 "" -- \
  ldapwhoami -x -H "$LDAP_URL" -D "$service" -w "not-the-secret"
for i in 1 2 3 4 5; do
  expect "wrong password $i of 5 for dave" 49 "" -- \
    ldapwhoami -x -H "$LDAP_URL" -D "uid=dave,$people" -w "wrong-$i"
done
expect "after five wrong passwords the right one is refused (locked)" 49 "" -- as_user dave ldapwhoami
expect "the lockout shows through the REST API's rules too" 0 "" -- \
  sh -c "curl -s -o /dev/null -w '%{http_code}' -X POST '$HTTP_URL/authenticate/connect/token' \
    -d 'grant_type=contensis_classic&username=dave&password=$LDAP_PASSWORD' | grep -qx 400"

# --- search
count "search by uid" 1 -- as_key ldapsearch -LLL -b "$LDAP_BASE" "(uid=alice)" uid
count "search by mail, case-insensitive" 1 -- as_key ldapsearch -LLL -b "$people" "(mail=ALICE@example.com)" uid
count "memberOf the top of a chain five deep finds the member at the bottom" 2 -- \
  as_key ldapsearch -LLL -b "$people" "(memberOf=cn=n1,$groups)" uid
expect "the member five deep lists every ancestor in memberOf" 0 "^memberOf: cn=n1,$groups$" -- \
  as_key ldapsearch -LLL -b "$people" "(uid=carol)" memberOf
count "an escaped group name in a DN" 1 -- \
  as_key ldapsearch -LLL -b "$people" "(memberOf=cn=Dev\\5C, Ops,$groups)" uid
count "paged results over 2,500 users" 2508 -- \
  as_key ldapsearch -LLL -E pr=500/noprompt -b "$people" -s one "(objectClass=person)" 1.1
count "a substring filter" 100 -- as_key ldapsearch -LLL -E pr=1000/noprompt -b "$people" "(uid=user00*)" 1.1
count "greater-or-equal on createTimestamp" 2508 -- \
  as_key ldapsearch -LLL -E pr=1000/noprompt -b "$people" "(createTimestamp>=20000101000000Z)" 1.1
count "a base search for one entry" 1 -- as_key ldapsearch -LLL -b "uid=alice,$people" -s base "(objectClass=*)" uid
expect "a missing entry is noSuchObject" 32 "" -- \
  as_key ldapsearch -LLL -b "uid=nobody,$people" -s base "(objectClass=*)"
expect "the client's size limit" 4 "" -- as_key ldapsearch -LLL -z 10 -b "$people" "(objectClass=person)" 1.1
expect "an unknown critical control is unavailableCriticalExtension" 12 "" -- \
  as_key ldapsearch -LLL -e '!1.2.3.4.5.6' -b "$people" "(uid=alice)"
count "an unknown non-critical control is ignored" 1 -- \
  as_key ldapsearch -LLL -e '1.2.3.4.5.6' -b "$people" "(uid=alice)" 1.1
count "a user sees only their own entry" 1 -- as_user alice ldapsearch -LLL -b "$people" "(objectClass=person)" 1.1
count "a user sees only their own groups" 2 -- as_user alice ldapsearch -LLL -b "$groups" -s one "(objectClass=*)" 1.1
expect "operational attributes with +" 0 "^entryUUID: [0-9a-f-]{36}$" -- \
  as_key ldapsearch -LLL -b "$people" "(uid=alice)" +

# --- compare
expect "compare: the value is there" 6 "^TRUE$" -- as_key ldapcompare "uid=alice,$people" "mail:ALICE@example.com"
expect "compare: another value" 5 "^FALSE$" -- as_key ldapcompare "uid=alice,$people" "mail:bob@example.com"
expect "compare: memberOf through nesting" 6 "^TRUE$" -- as_key ldapcompare "uid=carol,$people" "memberOf:cn=n1,$groups"
expect "compare: an entry the user cannot see is noSuchObject" 32 "" -- \
  as_user alice ldapcompare "uid=carol,$people" "uid:carol"

# --- writes
expect "a delete is unwillingToPerform" 53 "" -- as_key ldapdelete "uid=alice,$people"
expect "a modify is unwillingToPerform" 53 "" -- sh -c "printf 'dn: uid=alice,$people\nchangetype: modify\nreplace: mail\nmail: x@example.com\n' | \
  ldapmodify -x -H '$LDAP_URL' -D '$service' -w '$LDAP_KEY_SECRET'"

# --- password modify, through the password policy
# ldappasswd exits 1 on any failure; the result code is in its output.
expect "ldappasswd refuses a password the policy refuses" 1 "Constraint violation \(19\)" -- \
  as_user erin ldappasswd -a "$LDAP_PASSWORD" -s "short"
expect "ldappasswd changes one's own password" 0 "" -- \
  as_user erin ldappasswd -a "$LDAP_PASSWORD" -s "Another-Horse-43"
expect "the new password binds" 0 "^dn:uid=erin,$people$" -- \
  ldapwhoami -x -H "$LDAP_URL" -D "uid=erin,$people" -w "Another-Horse-43"
expect "the old password no longer binds" 49 "" -- as_user erin ldapwhoami
expect "ldappasswd for someone else is refused" 1 "Insufficient access \(50\)" -- \
  as_user frank ldappasswd -a "$LDAP_PASSWORD" -s "Another-Horse-43" "uid=alice,$people"

# --- TLS
expect "LDAPS with the test certificate" 0 "^dn:uid=alice,$people$" -- \
  ldapwhoami -x -H "$LDAPS_URL" -D "uid=alice,$people" -w "$LDAP_PASSWORD"
expect "StartTLS with the test certificate" 0 "^dn:uid=alice,$people$" -- \
  ldapwhoami -x -ZZ -H "$LDAP_URL" -D "uid=alice,$people" -w "$LDAP_PASSWORD"
expect "LDAPS refuses a client that does not trust the certificate" 255 "" -- \
  env LDAPTLS_CACERT=/dev/null ldapwhoami -x -H "$LDAPS_URL" -D "uid=alice,$people" -w "$LDAP_PASSWORD"

echo "ldap-utils: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
