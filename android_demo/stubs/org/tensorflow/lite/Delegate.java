package org.tensorflow.lite;

public interface Delegate extends AutoCloseable {
    long getNativeHandle();

    @Override
    default void close() {}
}
