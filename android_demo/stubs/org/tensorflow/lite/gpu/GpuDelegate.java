package org.tensorflow.lite.gpu;

import java.io.Closeable;
import org.tensorflow.lite.Delegate;

public class GpuDelegate implements Delegate, Closeable {
    public static final class Options extends GpuDelegateFactory.Options {
        public Options() { throw new RuntimeException("Stub!"); }
    }

    public GpuDelegate() { throw new RuntimeException("Stub!"); }
    public GpuDelegate(GpuDelegateFactory.Options options) { throw new RuntimeException("Stub!"); }
    @Override public long getNativeHandle() { throw new RuntimeException("Stub!"); }
    @Override public void close() { throw new RuntimeException("Stub!"); }
}
