/* Interop check with the Apache ZooKeeper C client (threaded, sync API).
 *
 * Usage: c_client_test HOST:PORT
 * Prints one line per check ("ok - ..." or "FAIL - ...") and exits non-zero
 * if any check failed.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

static int checks, failures;

static void check(int ok, const char* name, const char* fmt, ...) {
  printf("%s - %s", ok ? "ok" : "FAIL", name);
  if (!ok && fmt) {
    va_list ap;
    va_start(ap, fmt);
    printf(": ");
    vprintf(fmt, ap);
    va_end(ap);
  }
  printf("\n");
  fflush(stdout);
  checks++;
  if (!ok) failures++;
}

/* Connection state, signalled by the default watcher. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

static void session_watcher(zhandle_t* zh, int type, int state, const char* path, void* ctx) {
  (void)zh;
  (void)path;
  (void)ctx;
  if (type == ZOO_SESSION_EVENT) {
    pthread_mutex_lock(&lock);
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
  }
  (void)state;
}

static void deadline_in(struct timespec* ts, int ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static zhandle_t* open_session(const char* hosts) {
  zhandle_t* zh = zookeeper_init(hosts, session_watcher, 10000, NULL, NULL, 0);
  if (!zh) return NULL;
  struct timespec ts;
  deadline_in(&ts, 15000);
  pthread_mutex_lock(&lock);
  while (zoo_state(zh) != ZOO_CONNECTED_STATE) {
    if (pthread_cond_timedwait(&changed, &lock, &ts) != 0) break;
  }
  pthread_mutex_unlock(&lock);
  if (zoo_state(zh) != ZOO_CONNECTED_STATE) {
    zookeeper_close(zh);
    return NULL;
  }
  return zh;
}

/* A data watch that records every event it receives. */
struct watch_log {
  int count;
  int type;
  char path[256];
};

static void data_watcher(zhandle_t* zh, int type, int state, const char* path, void* ctx) {
  (void)zh;
  (void)state;
  struct watch_log* log = ctx;
  pthread_mutex_lock(&lock);
  log->count++;
  log->type = type;
  snprintf(log->path, sizeof log->path, "%s", path ? path : "");
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
}

static int cmp_str(const void* a, const void* b) {
  return strcmp(*(char* const*)a, *(char* const*)b);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s host:port\n", argv[0]);
    return 2;
  }
  const char* hosts = argv[1];
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);

  zhandle_t* zh = open_session(hosts);
  check(zh != NULL, "connect", "no session with %s", hosts);
  if (!zh) return 1;

  char base[64], path[128], buf[256], created[128];
  int rc, len;
  struct Stat st;
  snprintf(base, sizeof base, "/c-client-%d", (int)getpid());
  rc = zoo_create(zh, base, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, created, sizeof created);
  check(rc == ZOK && strcmp(created, base) == 0, "create base", "rc=%d path=%s", rc, created);

  /* create / get / set / delete */
  snprintf(path, sizeof path, "%s/node", base);
  rc = zoo_create(zh, path, "hello", 5, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  check(rc == ZOK, "create", "rc=%d", rc);
  rc = zoo_create(zh, path, "again", 5, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  check(rc == ZNODEEXISTS, "create existing is ZNODEEXISTS", "rc=%d", rc);
  len = sizeof buf;
  rc = zoo_get(zh, path, 0, buf, &len, &st);
  check(rc == ZOK && len == 5 && memcmp(buf, "hello", 5) == 0 && st.version == 0 &&
            st.dataLength == 5,
        "get", "rc=%d len=%d version=%d", rc, len, st.version);
  rc = zoo_set2(zh, path, "world!", 6, 0, &st);
  check(rc == ZOK && st.version == 1 && st.dataLength == 6 && st.mzxid > st.czxid, "set",
        "rc=%d version=%d", rc, st.version);
  rc = zoo_set(zh, path, "x", 1, 0);
  check(rc == ZBADVERSION, "set with stale version is ZBADVERSION", "rc=%d", rc);
  len = sizeof buf;
  rc = zoo_get(zh, path, 0, buf, &len, &st);
  check(rc == ZOK && len == 6 && memcmp(buf, "world!", 6) == 0, "get after set", "rc=%d len=%d", rc,
        len);
  rc = zoo_delete(zh, path, 1);
  check(rc == ZOK, "delete", "rc=%d", rc);
  rc = zoo_exists(zh, path, 0, &st);
  check(rc == ZNONODE, "exists after delete is ZNONODE", "rc=%d", rc);
  rc = zoo_delete(zh, path, -1);
  check(rc == ZNONODE, "delete missing is ZNONODE", "rc=%d", rc);

  /* sequential nodes */
  snprintf(path, sizeof path, "%s/seq-", base);
  for (int i = 0; i < 2; i++) {
    char want[160];
    snprintf(want, sizeof want, "%s/seq-%010d", base, i + 1);
    rc = zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL, created,
                    sizeof created);
    check(rc == ZOK && strcmp(created, want) == 0, "sequential create", "rc=%d got=%s want=%s", rc,
          created, want);
  }

  /* get_children */
  struct String_vector children = {0, NULL};
  rc = zoo_get_children(zh, base, 0, &children);
  if (rc == ZOK) qsort(children.data, children.count, sizeof(char*), cmp_str);
  check(rc == ZOK && children.count == 2 && strcmp(children.data[0], "seq-0000000001") == 0 &&
            strcmp(children.data[1], "seq-0000000002") == 0,
        "get_children", "rc=%d count=%d", rc, children.count);
  deallocate_String_vector(&children);

  /* exists: Stat fields of the parent and of an ephemeral */
  rc = zoo_exists(zh, base, 0, &st);
  /* node: +1 -1, seq: +2 -> cversion = creations + deletions = 4 */
  check(rc == ZOK && st.version == 0 && st.cversion == 4 && st.aversion == 0 &&
            st.numChildren == 2 && st.dataLength == 0 && st.ephemeralOwner == 0 &&
            st.pzxid > st.czxid && st.mzxid == st.czxid,
        "exists stat", "rc=%d version=%d cversion=%d numChildren=%d pzxid=%lld czxid=%lld", rc,
        st.version, st.cversion, st.numChildren, (long long)st.pzxid, (long long)st.czxid);

  /* ephemeral node disappears when its owner closes */
  zhandle_t* owner = open_session(hosts);
  check(owner != NULL, "second session", NULL);
  if (owner) {
    int64_t sid = zoo_client_id(owner)->client_id;
    snprintf(path, sizeof path, "%s/eph", base);
    rc = zoo_create(owner, path, "e", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
    check(rc == ZOK, "create ephemeral", "rc=%d", rc);
    rc = zoo_exists(zh, path, 0, &st);
    check(rc == ZOK && st.ephemeralOwner == sid, "ephemeralOwner is the owner's session id",
          "rc=%d owner=%llx sid=%llx", rc, (unsigned long long)st.ephemeralOwner,
          (unsigned long long)sid);
    zookeeper_close(owner);
    rc = zoo_exists(zh, path, 0, &st);
    check(rc == ZNONODE, "ephemeral gone after zookeeper_close", "rc=%d", rc);
  }

  /* a data watch fires exactly once */
  snprintf(path, sizeof path, "%s/watched", base);
  zoo_create(zh, path, "0", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  struct watch_log log = {0, 0, ""};
  len = sizeof buf;
  rc = zoo_wget(zh, path, data_watcher, &log, buf, &len, &st);
  check(rc == ZOK, "wget", "rc=%d", rc);
  zoo_set(zh, path, "1", 1, -1);
  zoo_set(zh, path, "2", 1, -1);
  struct timespec ts;
  deadline_in(&ts, 5000);
  pthread_mutex_lock(&lock);
  while (log.count == 0 && pthread_cond_timedwait(&changed, &lock, &ts) == 0)
    ;
  pthread_mutex_unlock(&lock);
  usleep(300 * 1000);
  pthread_mutex_lock(&lock);
  check(log.count == 1 && log.type == ZOO_CHANGED_EVENT && strcmp(log.path, path) == 0,
        "data watch fires exactly once", "count=%d type=%d path=%s", log.count, log.type, log.path);
  pthread_mutex_unlock(&lock);

  /* a multi with a failing check rolls back */
  char multi_child[160], seq_buf[160];
  snprintf(multi_child, sizeof multi_child, "%s/from-multi", base);
  zoo_op_t ops[3];
  zoo_op_result_t results[3];
  memset(results, 0, sizeof results);
  zoo_create_op_init(&ops[0], multi_child, "m", 1, &ZOO_OPEN_ACL_UNSAFE, 0, seq_buf,
                     sizeof seq_buf);
  zoo_check_op_init(&ops[1], base, 42);
  zoo_set_op_init(&ops[2], base, "nope", 4, -1, NULL);
  rc = zoo_multi(zh, 3, ops, results);
  check(rc == ZBADVERSION, "failed multi returns ZBADVERSION", "rc=%d", rc);
  check(results[0].err == ZOK && results[1].err == ZBADVERSION &&
            results[2].err == ZRUNTIMEINCONSISTENCY,
        "failed multi per-op results", "errs=%d,%d,%d", results[0].err, results[1].err,
        results[2].err);
  rc = zoo_exists(zh, multi_child, 0, &st);
  check(rc == ZNONODE, "failed multi created nothing", "rc=%d", rc);
  rc = zoo_exists(zh, base, 0, &st);
  check(rc == ZOK && st.version == 0, "failed multi set nothing", "rc=%d version=%d", rc,
        st.version);

  zoo_check_op_init(&ops[1], base, 0);
  memset(results, 0, sizeof results);
  rc = zoo_multi(zh, 3, ops, results);
  check(rc == ZOK && results[0].err == ZOK && results[1].err == ZOK && results[2].err == ZOK &&
            strcmp(seq_buf, multi_child) == 0,
        "multi commits", "rc=%d errs=%d,%d,%d", rc, results[0].err, results[1].err, results[2].err);
  rc = zoo_exists(zh, base, 0, &st);
  check(rc == ZOK && st.version == 1 && st.numChildren == 4, "multi applied every op",
        "rc=%d version=%d numChildren=%d", rc, st.version, st.numChildren);

  zookeeper_close(zh);
  printf("checks: %d, failures: %d\n", checks, failures);
  return failures ? 1 : 0;
}
