package android.net;

public abstract class Uri implements Comparable<Uri> {
    Uri() { throw new RuntimeException("Stub!"); }
    public static Uri parse(String uriString) { throw new RuntimeException("Stub!"); }
    public abstract String toString();
    public int compareTo(Uri other) { throw new RuntimeException("Stub!"); }
}
