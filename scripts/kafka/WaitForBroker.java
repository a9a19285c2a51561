// Waits until a Kafka cluster answers metadata requests with at least NODES
// brokers (default 1), or a deadline passes.
// Usage: java -cp CLASSES:KAFKA_LIBS WaitForBroker HOST:PORT[,...] SECONDS [NODES] (scripts/lib/kafka.sh)
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;

public class WaitForBroker {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
        int expected = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "2000");
        try (Admin admin = Admin.create(props)) {
            while (System.nanoTime() < deadline) {
                try {
                    var nodes = admin.describeCluster(new DescribeClusterOptions().timeoutMs(2000))
                        .nodes().get(3, TimeUnit.SECONDS);
                    if (nodes.size() >= expected) {
                        System.exit(0);
                    }
                } catch (Exception notYet) {
                    // Not listening or not registered yet: try again until the deadline.
                }
                Thread.sleep(200);
            }
        }
        System.exit(1);
    }
}
