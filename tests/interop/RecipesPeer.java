import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.state.ConnectionState;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;

// Curator's side of test_recipes_interop.py, with recipes_check.cpp's line
// protocol: RecipesPeer HOSTS COMMAND ARGS...
public class RecipesPeer {
    static void say(String s) { System.out.println(s); System.out.flush(); }

    static final QueueSerializer<String> STRINGS = new QueueSerializer<String>() {
        public byte[] serialize(String item) { return item.getBytes(StandardCharsets.UTF_8); }
        public String deserialize(byte[] bytes) { return new String(bytes, StandardCharsets.UTF_8); }
    };

    public static void main(String[] a) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.newClient(a[0], 30000, 10000, new ExponentialBackoffRetry(200, 10));
        c.start();
        if (!c.blockUntilConnected(30, TimeUnit.SECONDS)) throw new IllegalStateException("not connected");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        switch (a[1]) {
            case "mutex": {
                InterProcessMutex m = new InterProcessMutex(c, a[2]);
                m.acquire();
                say("acquired");
                in.readLine();
                m.release();
                say("released");
                break;
            }
            case "latch": {
                LeaderLatch l = new LeaderLatch(c, a[2], a[3]);
                l.addListener(new LeaderLatchListener() {
                    public void isLeader() { say("leader"); }
                    public void notLeader() { say("follower"); }
                });
                l.start();
                in.readLine();
                l.close();
                break;
            }
            case "count-add": {
                SharedCount n = new SharedCount(c, a[2], 0);
                n.start();
                while (true) {
                    VersionedValue<Integer> v = n.getVersionedValue();
                    if (n.trySetCount(v, v.getValue() + Integer.parseInt(a[3]))) { say(Integer.toString(v.getValue() + Integer.parseInt(a[3]))); break; }
                }
                n.close();
                break;
            }
            case "count-get": {
                SharedCount n = new SharedCount(c, a[2], 0);
                n.start();
                say(Integer.toString(n.getCount()));
                n.close();
                break;
            }
            case "barrier": {
                DistributedBarrier b = new DistributedBarrier(c, a[2]);
                b.setBarrier();
                say("set");
                in.readLine();
                b.removeBarrier();
                say("removed");
                break;
            }
            case "register": {
                ServiceDiscovery<Void> sd = ServiceDiscoveryBuilder.builder(Void.class).client(c).basePath(a[2]).build();
                sd.start();
                ServiceInstance<Void> i = ServiceInstance.<Void>builder().name(a[3]).id(a[4]).address(a[5])
                    .port(Integer.parseInt(a[6])).build();
                sd.registerService(i);
                say("registered");
                in.readLine();
                sd.close();
                break;
            }
            case "instances": {
                ServiceDiscovery<Void> sd = ServiceDiscoveryBuilder.builder(Void.class).client(c).basePath(a[2]).build();
                sd.start();
                for (ServiceInstance<Void> i : sd.queryForInstances(a[3]))
                    say(i.getId() + " " + i.getAddress() + " " + i.getPort());
                say("done");
                sd.close();
                break;
            }
            case "rwlock": {
                InterProcessReadWriteLock rw = new InterProcessReadWriteLock(c, a[2]);
                InterProcessMutex m = a[3].equals("write") ? rw.writeLock() : rw.readLock();
                m.acquire();
                say("acquired");
                in.readLine();
                m.release();
                say("released");
                break;
            }
            case "semaphore": {
                InterProcessSemaphoreV2 s = new InterProcessSemaphoreV2(c, a[2], Integer.parseInt(a[3]));
                Lease lease = s.acquire();
                say("acquired");
                in.readLine();
                s.returnLease(lease);
                say("released");
                break;
            }
            case "double-barrier": {
                DistributedDoubleBarrier b = new DistributedDoubleBarrier(c, a[2], Integer.parseInt(a[3]));
                b.enter();
                say("entered");
                in.readLine();
                b.leave();
                say("left");
                break;
            }
            case "queue-put": {
                DistributedQueue<String> q = QueueBuilder.builder(c, null, STRINGS, a[2]).buildQueue();
                q.start();
                q.put(a[3]);
                say("put");
                q.close();
                break;
            }
            case "queue-take": {
                CountDownLatch got = new CountDownLatch(1);
                QueueConsumer<String> consumer = new QueueConsumer<String>() {
                    public void consumeMessage(String m) { if (got.getCount() > 0) { say(m); got.countDown(); } }
                    public void stateChanged(CuratorFramework f, ConnectionState s) {}
                };
                DistributedQueue<String> q = QueueBuilder.builder(c, consumer, STRINGS, a[2]).buildQueue();
                q.start();
                got.await(60, TimeUnit.SECONDS);
                q.close();
                break;
            }
            case "write": {
                if (c.checkExists().forPath(a[2]) == null)
                    c.create().creatingParentsIfNeeded().forPath(a[2], a[3].getBytes(StandardCharsets.UTF_8));
                else
                    c.setData().forPath(a[2], a[3].getBytes(StandardCharsets.UTF_8));
                say("written");
                break;
            }
            case "delete": {
                c.delete().deletingChildrenIfNeeded().forPath(a[2]);
                say("deleted");
                break;
            }
            default:
                throw new IllegalArgumentException(a[1]);
        }
        c.close();
    }
}
