import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Collection;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;

// Curator's ServiceDiscovery against Corral's service-registry recipe:
//   RegistryCheck <hosts> <basePath>
// registers "curator-api" (id from-curator, 10.5.0.1:9000) and prints
// "registered"; then for each service name read from stdin prints
// "found <id> <address> <port>" per instance Curator sees, then "done";
// on end of input it unregisters and exits.
public class RegistryCheck {
    public static void main(String[] args) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.newClient(args[0], 30000, 10000, new ExponentialBackoffRetry(200, 10));
        c.start();
        if (!c.blockUntilConnected(30, TimeUnit.SECONDS)) throw new IllegalStateException("not connected to " + args[0]);
        ServiceDiscovery<Void> sd = ServiceDiscoveryBuilder.builder(Void.class).client(c).basePath(args[1]).build();
        sd.start();
        ServiceInstance<Void> mine = ServiceInstance.<Void>builder().name("curator-api").id("from-curator")
            .address("10.5.0.1").port(9000).build();
        sd.registerService(mine);
        System.out.println("registered");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String name;
        while ((name = in.readLine()) != null) {
            Collection<ServiceInstance<Void>> found = sd.queryForInstances(name.trim());
            for (ServiceInstance<Void> i : found)
                System.out.println("found " + i.getId() + " " + i.getAddress() + " " + i.getPort());
            System.out.println("done");
            System.out.flush();
        }
        sd.unregisterService(mine);
        sd.close();
        c.close();
    }
}
