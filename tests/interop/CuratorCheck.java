// Apache Curator's recipes against a ZooKeeper-protocol server: parent
// containers, LeaderLatch, InterProcessMutex, CuratorCache (persistent
// recursive watches) and ServiceDiscovery. Prints one line per check and
// exits 1 on the first that fails.
//
//   java -cp <curator jars> CuratorCheck host:port[,host:port...]
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.zookeeper.data.Stat;

public class CuratorCheck {
    static void check(boolean ok, String what) {
        System.out.println((ok ? "ok   " : "FAIL ") + what);
        if (!ok) System.exit(1);
    }

    static CuratorFramework client(String hosts) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.newClient(hosts, 10000, 5000, new ExponentialBackoffRetry(100, 10));
        c.start();
        check(c.blockUntilConnected(30, TimeUnit.SECONDS), "connected to " + hosts);
        return c;
    }

    static boolean waitFor(java.util.function.BooleanSupplier cond, long ms) throws InterruptedException {
        long end = System.currentTimeMillis() + ms;
        while (System.currentTimeMillis() < end) {
            if (cond.getAsBoolean()) return true;
            Thread.sleep(20);
        }
        return cond.getAsBoolean();
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        CuratorFramework a = client(hosts), b = client(hosts);

        // create with parent containers
        a.create().creatingParentContainersIfNeeded().forPath("/curator/app/cfg/leaf", "v1".getBytes(StandardCharsets.UTF_8));
        check(new String(b.getData().forPath("/curator/app/cfg/leaf"), StandardCharsets.UTF_8).equals("v1"),
              "create creatingParentContainersIfNeeded, read by another client");
        Stat parent = b.checkExists().forPath("/curator/app/cfg");
        check(parent != null && parent.getNumChildren() == 1, "parent containers exist");

        // LeaderLatch: one leader; when it closes, the other leads
        LeaderLatch l1 = new LeaderLatch(a, "/curator/latch", "one");
        LeaderLatch l2 = new LeaderLatch(b, "/curator/latch", "two");
        l1.start();
        check(l1.await(20, TimeUnit.SECONDS), "first LeaderLatch leads");
        l2.start();
        Thread.sleep(500);
        check(!l2.hasLeadership(), "second LeaderLatch waits");
        check(l2.getLeader().getId().equals("one"), "both see the same leader");
        l1.close();
        check(l2.await(20, TimeUnit.SECONDS), "second LeaderLatch leads once the first closes");
        l2.close();

        // InterProcessMutex: exclusion across clients
        InterProcessMutex m1 = new InterProcessMutex(a, "/curator/lock");
        InterProcessMutex m2 = new InterProcessMutex(b, "/curator/lock");
        check(m1.acquire(10, TimeUnit.SECONDS), "first mutex acquired");
        check(!m2.acquire(500, TimeUnit.MILLISECONDS), "second mutex excluded while held");
        m1.release();
        check(m2.acquire(10, TimeUnit.SECONDS), "second mutex acquired after release");
        m2.release();

        // CuratorCache: persistent recursive watches (addWatch)
        List<String> events = new CopyOnWriteArrayList<>();
        CountDownLatch initialized = new CountDownLatch(1);
        a.create().creatingParentsIfNeeded().forPath("/curator/cache/x", "0".getBytes(StandardCharsets.UTF_8));
        CuratorCache cache = CuratorCache.build(a, "/curator/cache");
        cache.listenable().addListener(CuratorCacheListener.builder()
            .forCreates(n -> events.add("create " + n.getPath()))
            .forChanges((o, n) -> events.add("change " + n.getPath() + " " + new String(n.getData(), StandardCharsets.UTF_8)))
            .forDeletes(n -> events.add("delete " + n.getPath()))
            .forInitialized(initialized::countDown)
            .build());
        cache.start();
        check(initialized.await(20, TimeUnit.SECONDS), "CuratorCache initialized");
        b.create().forPath("/curator/cache/y");
        b.create().forPath("/curator/cache/y/deep");
        b.setData().forPath("/curator/cache/x", "1".getBytes(StandardCharsets.UTF_8));
        // The cache reads a node after its create event: delete it only once
        // the cache has it (a node created and deleted before that read is
        // never seen, against any server).
        check(waitFor(() -> events.contains("create /curator/cache/y") && events.contains("create /curator/cache/y/deep")
                  && events.contains("change /curator/cache/x 1"), 20000),
              "CuratorCache saw creates and a change below it: " + events);
        b.delete().forPath("/curator/cache/y/deep");
        check(waitFor(() -> events.contains("delete /curator/cache/y/deep"), 20000),
              "CuratorCache saw a delete below it: " + events);
        check(cache.get("/curator/cache/y").isPresent() && !cache.get("/curator/cache/y/deep").isPresent(),
              "CuratorCache holds the tree");
        cache.close();

        // ServiceDiscovery: register through one client, query through another
        ServiceDiscovery<Void> reg = ServiceDiscoveryBuilder.builder(Void.class).client(a).basePath("/curator/services").build();
        reg.start();
        ServiceInstance<Void> inst = ServiceInstance.<Void>builder().name("api").address("10.1.2.3").port(8080).build();
        reg.registerService(inst);
        ServiceDiscovery<Void> query = ServiceDiscoveryBuilder.builder(Void.class).client(b).basePath("/curator/services").build();
        query.start();
        Collection<ServiceInstance<Void>> found = query.queryForInstances("api");
        check(found.size() == 1 && found.iterator().next().getPort() == 8080 &&
              found.iterator().next().getAddress().equals("10.1.2.3"), "ServiceDiscovery finds the instance: " + found);
        check(query.queryForNames().contains("api"), "ServiceDiscovery lists the service");
        reg.unregisterService(inst);
        check(query.queryForInstances("api").isEmpty(), "unregistered instance is gone");
        reg.close();
        query.close();

        a.close();
        b.close();
        System.out.println("all Curator checks passed");
    }
}
